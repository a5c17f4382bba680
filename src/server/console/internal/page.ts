/**
 * The console's HTML, rendered on the server: the sign-in form and the
 * console page with its credential table, which works without JavaScript
 * (a GET form and page links). The script enhances it: plots, meters, the
 * table refreshed in place, and the actions.
 */
import { FAMILIES, type Page, PAGE_SIZES, type Query, type Row, STATES } from "./rows.js"
import type { Session } from "./session.js"

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }

export const escape = (text: string): string => text.replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char)

export const head = (title: string, extra = "") =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
  `<meta name="viewport" content="width=device-width,initial-scale=1">` +
  `<title>${escape(title)}</title><link rel="stylesheet" href="/console/assets/console.css">${extra}</head>`

const SIGN_IN_PROBLEMS = {
  refused: "This key may not sign in to the console.",
  limited: "Too many wrong keys from this address: try again in a few seconds."
} as const

/** The sign-in form; `problem` says why the last attempt did not sign in. */
export const signIn = (problem?: keyof typeof SIGN_IN_PROBLEMS): string =>
  `${head("Sign in · WeChat token console")}<body><main class="sign-in"><h1>WeChat token console</h1>` +
  `<form method="post" action="/console/session">` +
  `<label for="key">Ops or admin key</label>` +
  `<input id="key" name="key" type="password" autocomplete="current-password" required maxlength="512"` +
  `${problem === undefined ? "" : " aria-describedby=\"refused\" aria-invalid=\"true\""} autofocus>` +
  (problem === undefined ? "" : `<p id="refused" class="error" role="alert">${SIGN_IN_PROBLEMS[problem]}</p>`) +
  `<button type="submit">Sign in</button></form></main></body></html>`

const number = (value: number) => value.toLocaleString("en-US")

/** `1 h 05 min`, `42 s`, `overdue 3 min`. */
export const duration = (seconds: number | null): string => {
  if (seconds === null) return "—"
  const late = seconds < 0
  const s = Math.abs(seconds)
  const text = s < 60
    ? `${s} s`
    : s < 3_600
    ? `${Math.floor(s / 60)} min`
    : `${Math.floor(s / 3_600)} h ${String(Math.floor((s % 3_600) / 60)).padStart(2, "0")} min`
  return late ? `overdue ${text}` : text
}

const row = (item: Row): string =>
  `<tr><th scope="row"><code>${escape(item.owner)}</code></th><td>${item.family}</td><td>${escape(item.kind)}</td>` +
  `<td><span class="state state-${item.state}">${item.state}</span></td>` +
  `<td>${duration(item.expiresIn)}</td><td>${duration(item.refreshIn)}</td>` +
  `<td>${
    item.lastFailure === null
      ? "—"
      : `<strong>${escape(item.lastFailure.code)}</strong> <span class="advice">${
        escape(item.lastFailure.advice)
      }</span>`
  }</td>` +
  `<td class="actions"><button type="button" class="js-only" data-action="refresh" data-owner="${
    escape(item.owner)
  }" data-kind="${escape(item.kind)}">Refresh</button>${
    item.retirable
      ? ` <button type="button" class="js-only danger" data-action="retire" data-owner="${
        escape(item.owner)
      }">Retire</button>`
      : ""
  }</td></tr>`

const options = (values: ReadonlyArray<string | number>, selected: string | number | undefined, blank?: string) =>
  (blank === undefined ? "" : `<option value="">${blank}</option>`) +
  values.map((value) => `<option${value === selected ? " selected" : ""}>${value}</option>`).join("")

const linkTo = (query: Query, page: number) => {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries({ ...query, page })) {
    if (value !== undefined && value !== "" && !(name === "page" && value === 1)) params.set(name, String(value))
  }
  const text = params.toString()
  return text === "" ? "/console" : `/console?${text}`
}

/** The table, its summary and its pager: what the script swaps in place. */
const table = (query: Query, page: Page, problem: string | undefined): string => {
  const first = page.matched === 0 ? 0 : (page.page - 1) * page.size + 1
  const last = (page.page - 1) * page.size + page.rows.length
  return `<div id="table-region">` +
    (problem === undefined ? "" : `<p class="error" role="alert">${escape(problem)}</p>`) +
    `<p id="table-summary" aria-live="polite">Showing ${number(first)}–${number(last)} of ${
      number(page.matched)
    } matching · ${number(page.total)} credentials · ${number(page.overdue)} overdue</p>` +
    `<div class="table-wrap" tabindex="0" role="region" aria-label="Credential table">` +
    `<table id="credentials"><caption class="visually-hidden">Credentials, page ${page.page} of ${page.pages}</caption>` +
    `<thead><tr><th scope="col">Owner</th><th scope="col">Family</th><th scope="col">Kind</th>` +
    `<th scope="col">State</th><th scope="col">Expires in</th><th scope="col">Next refresh</th>` +
    `<th scope="col">Last failure</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>` +
    `<tbody>${page.rows.map(row).join("")}</tbody></table></div>` +
    `<nav id="pager" aria-label="Pages">` +
    (page.page > 1 ? `<a rel="prev" href="${escape(linkTo(query, page.page - 1))}">Previous</a>` : "") +
    ` <span>Page ${number(page.page)} of ${number(page.pages)}</span> ` +
    (page.page < page.pages ? `<a rel="next" href="${escape(linkTo(query, page.page + 1))}">Next</a>` : "") +
    `</nav></div>`
}

/**
 * The top bar: who is signed in, a link to the other page (the registry's
 * only for an admin key's session) and "Sign out".
 */
export const header = (session: Session, other: "console" | "registry"): string =>
  `<body><header><h1>WeChat token console</h1><p>Signed in with ${escape(session.who)}${
    session.actor === undefined ? "" : " (admin)"
  }</p>` +
  (other === "console"
    ? `<nav aria-label="Console pages"><a href="/console">Credentials and plots</a></nav>`
    : session.actor === undefined
    ? ""
    : `<nav aria-label="Console pages"><a href="/console/registry">Apps, WeCom apps and client keys</a></nav>`) +
  `<form method="post" action="/console/session/end"><input type="hidden" name="csrf" value="${session.csrf}">` +
  `<button type="submit">Sign out</button></form></header>`

/** The console page for a signed-in session. */
export const consolePage = (session: Session, query: Query, page: Page, problem?: string): string =>
  head(
    "WeChat token console",
    `<link rel="stylesheet" href="/console/assets/uplot.css"><meta name="csrf-token" content="${session.csrf}">` +
      `<script src="/console/assets/uplot.js" defer></script><script src="/console/assets/console.js" defer></script>`
  ) +
  header(session, "registry") +
  `<main>` +
  `<p id="status" role="status" aria-live="polite"></p>` +
  `<div class="panels">` +
  `<section aria-labelledby="timeline-title" class="wide"><h2 id="timeline-title">Last 24 hours</h2>` +
  `<label for="timeline-owner">Plot for</label> <select id="timeline-owner"><option value="">All owners</option></select>` +
  `<div id="timeline" class="chart"></div><p id="timeline-summary" class="js-only"></p>` +
  `<noscript><p>The plots need JavaScript; the table below works without it.</p></noscript></section>` +
  `<section aria-labelledby="budgets-title"><h2 id="budgets-title">Budgets today</h2><div id="budgets"></div></section>` +
  `<section aria-labelledby="traffic-title"><h2 id="traffic-title">Proxy and gateway traffic</h2>` +
  `<div id="traffic"></div></section>` +
  `<section aria-labelledby="replicas-title"><h2 id="replicas-title">Replicas</h2><div id="replicas"></div></section>` +
  `</div>` +
  `<section aria-labelledby="credentials-title"><h2 id="credentials-title">Credentials</h2>` +
  `<form id="filter" method="get" action="/console" role="search">` +
  `<label>Owner <input name="q" type="search" value="${escape(query.q ?? "")}" maxlength="100"></label>` +
  `<label>Family <select name="family">${options(FAMILIES, query.family, "all families")}</select></label>` +
  `<label>Kind <input name="kind" value="${escape(query.kind ?? "")}" maxlength="64" size="14"></label>` +
  `<label>State <select name="state">${options(STATES, query.state, "all states")}</select></label>` +
  `<label>Rows <select name="size">${options(PAGE_SIZES, page.size)}</select></label>` +
  `<button type="submit">Apply</button></form>` +
  table(query, page, problem) +
  `</section></main></body></html>`

export const CSS = `
:root{color-scheme:light;--fg:#1b1f24;--muted:#4a5360;--bg:#fff;--panel:#f4f6f8;--line:#c9d1d9;--accent:#0a58ca;
--ok:#116329;--warn:#7a4d00;--bad:#a40e26;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
*{box-sizing:border-box}body{margin:0;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;padding:.75rem 1.25rem;border-bottom:1px solid var(--line)}
header h1{font-size:1.2rem;margin:0}header p{margin:0;color:var(--muted)}header form{margin-left:auto}
main{padding:1rem 1.25rem;max-width:1400px;margin:0 auto}h2{font-size:1.05rem;margin:0 0 .5rem}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1rem;margin-bottom:1.25rem}
.panels section{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.75rem;min-width:0}
.panels .wide{grid-column:1/-1}.chart{min-height:40px;overflow:hidden}
button,input,select{font:inherit;color:inherit}button{background:var(--accent);color:#fff;border:0;border-radius:4px;
padding:.35rem .8rem;cursor:pointer}button.danger{background:var(--bad)}
input,select{border:1px solid #6e7781;border-radius:4px;padding:.3rem .4rem;background:#fff}
:focus-visible{outline:3px solid #f0b400;outline-offset:2px}
#filter{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;margin-bottom:.5rem}
#filter label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
.table-wrap{overflow-x:auto;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.4rem .6rem;
border-bottom:1px solid var(--line);vertical-align:top}thead th{background:var(--panel);position:sticky;top:0}
tbody th{font-weight:normal}code{font-size:.85rem}.advice{color:var(--muted)}td.actions{white-space:nowrap}
.state{font-weight:600}.state-valid{color:var(--ok)}.state-failing{color:var(--warn)}.state-invalid,.state-retired{color:var(--bad)}
#pager{display:flex;gap:1rem;align-items:center;padding:.6rem 0}a{color:var(--accent)}
.meter{display:grid;grid-template-columns:1fr auto;gap:0 .5rem;margin:.35rem 0;font-size:.85rem}
.meter meter{grid-column:1/-1;width:100%;height:.9rem}.error{color:var(--bad);font-weight:600}
.sign-in{max-width:22rem;margin:12vh auto;padding:1.5rem}.sign-in form{display:flex;flex-direction:column;gap:.6rem}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.js-only{display:none}html.js .js-only{display:initial}dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem;margin:0}
dd{margin:0;font-variant-numeric:tabular-nums}#status:empty{display:none}#status{padding:.5rem;background:#e7f0ff;border-radius:4px}
.registry section{margin-bottom:1.5rem}h3{font-size:1rem;margin:.5rem 0}h4{font-size:.95rem;margin:.75rem 0 .25rem}
.registry-form{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;margin:.25rem 0}
.registry-form label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
.registry-form label.confirm{flex-direction:row;gap:.3rem;align-items:center}td .registry-form{margin:0}
.done{padding:.5rem;background:#e7f6ec;border-radius:4px}.new-key input{font-family:monospace;width:100%;max-width:40rem}
@media (max-width:640px){main{padding:.75rem}header form{margin-left:0}}
`
