/**
 * The console's script, served as one small file: no build step, no
 * framework. It only enhances the server-rendered page: the plots (uPlot,
 * served by this server), the meters, the table refreshed in place (it
 * fetches the same page the links name and swaps the table in, so the table
 * has one renderer), and the confirmed actions.
 */
export const SCRIPT = `(function () {
"use strict";
document.documentElement.classList.add("js");
var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
var statusLine = document.getElementById("status");
var ownerSelect = document.getElementById("timeline-owner");
var COLORS = ["#0a58ca", "#116329", "#a40e26"];
var charts = {};
function say(text) { statusLine.textContent = text; }
function answer(response) {
  if (response.status === 401) { location.href = "/console"; throw new Error("the session ended"); }
  return response.json().then(function (body) {
    if (!response.ok) throw new Error(body && body.error ? body.error.message : "HTTP " + response.status);
    return body;
  });
}
function getJson(path) { return fetch(path, { headers: { accept: "application/json" } }).then(answer); }
function sum(values) { var total = 0; for (var i = 0; i < values.length; i++) total += values[i]; return total; }
function fmt(n) { return n.toLocaleString("en-US"); }
function plot(id, timeline, names, labels, height) {
  var el = document.getElementById(id);
  var data = [timeline.times];
  var series = [{}];
  var described = [];
  names.forEach(function (name, i) {
    data.push(timeline.series[name]);
    series.push({ label: labels[i], stroke: COLORS[i % COLORS.length], width: 1.5 });
    described.push(fmt(sum(timeline.series[name])) + " " + labels[i].toLowerCase());
  });
  if (charts[id]) charts[id].destroy();
  charts[id] = new uPlot({ width: Math.max(240, el.clientWidth), height: height, series: series,
    axes: [{}, { size: 48 }], legend: { live: false } }, data, el);
  el.setAttribute("role", "img");
  el.setAttribute("aria-label", "Over 24 hours: " + described.join(", "));
  return described.join(", ");
}
function timeline() {
  var owner = ownerSelect.value;
  return getJson("/console/api/timeline" + (owner ? "?owner=" + encodeURIComponent(owner) : "")).then(function (t) {
    if (ownerSelect.options.length === 1) t.owners.forEach(function (name) {
      var option = document.createElement("option"); option.textContent = name; ownerSelect.appendChild(option);
    });
    var names = owner ? ["issued", "failures"] : ["fetches", "issued", "failures"];
    var labels = owner ? ["Issued", "Failures"] : ["Fetches", "Issued", "Failures"];
    document.getElementById("timeline-summary").textContent = "Last 24 h: " + plot("timeline", t.timeline, names, labels, 220) + ".";
  });
}
function meter(label, value, max, note) {
  var id = "m" + Math.random().toString(36).slice(2);
  return '<div class="meter"><label for="' + id + '">' + label + '</label><span>' + fmt(value) + " / " + fmt(max) +
    (note ? " " + note : "") + '</span><meter id="' + id + '" min="0" max="' + max + '" low="' + Math.round(max * 0.8) +
    '" high="' + Math.round(max * 0.9) + '" optimum="0" value="' + value + '"></meter></div>';
}
function esc(text) { var el = document.createElement("span"); el.textContent = text; return el.innerHTML; }
function budgets() {
  return getJson("/console/api/budgets").then(function (b) {
    var html = "<p>Pacing backlog: " + fmt(b.overdue) + " credentials overdue for refresh</p>";
    b.apps.forEach(function (app) {
      if (app.classicFetchesToday !== null) html += meter(esc(app.owner) + " classic fetches", app.classicFetchesToday, b.classicPerDay);
      if (app.forceRefreshesToday !== null) html += meter(esc(app.owner) + " stable force refreshes", app.forceRefreshesToday, b.forcePerDay);
    });
    if (b.more > 0) html += "<p>" + fmt(b.more) + " more apps not shown</p>";
    document.getElementById("budgets").innerHTML = html;
  });
}
function traffic() {
  return getJson("/console/api/traffic").then(function (t) {
    var names = Object.keys(t.totals);
    var html = "<dl>";
    names.forEach(function (name) { html += "<dt>" + esc(name) + "</dt><dd>" + fmt(t.totals[name]) + "</dd>"; });
    if (names.length === 0) html += "<dt>No proxied calls yet</dt><dd></dd>";
    document.getElementById("traffic").innerHTML = html + '</dl><div id="traffic-chart" class="chart"></div>';
    plot("traffic-chart", t.timeline, ["proxyCalls", "proxyReplays", "proxyRefusals"], ["Calls", "Replays", "Refusals"], 120);
  });
}
function replicas() {
  return getJson("/console/api/replicas").then(function (r) {
    var html = "<table><caption class='visually-hidden'>Replicas</caption><thead><tr><th scope='col'>Replica</th>" +
      "<th scope='col'>State</th><th scope='col'>Leases held</th></tr></thead><tbody>";
    r.replicas.forEach(function (replica) {
      var leases = replica.leases.map(function (lease) { return esc(lease.owner) + " " + esc(lease.kind); });
      html += "<tr><th scope='row'><code>" + esc(replica.id) + "</code>" + (replica.self ? " (this one)" : "") +
        "</th><td>" + (replica.alive ? "alive" : "gone, last seen " + new Date(replica.seen).toLocaleTimeString()) +
        "</td><td>" + (leases.length ? leases.join(", ") : "none") + "</td></tr>";
    });
    document.getElementById("replicas").innerHTML = html + "</tbody></table>" + (r.scope === "group" ? "" :
      "<p>This replica only: the store shares no heartbeats.</p>");
  });
}
function panels() {
  return Promise.all([timeline(), budgets(), traffic(), replicas()]).catch(function (error) { say(error.message); });
}
function load(url) {
  return fetch(url, { headers: { accept: "text/html" } }).then(function (response) {
    if (response.redirected || response.status === 401) { location.href = "/console"; return; }
    return response.text().then(function (text) {
      var next = new DOMParser().parseFromString(text, "text/html").getElementById("table-region");
      if (next === null) { location.href = url; return; }
      document.getElementById("table-region").replaceWith(next);
      history.replaceState(null, "", url);
    });
  });
}
var form = document.getElementById("filter");
form.addEventListener("submit", function (event) {
  event.preventDefault();
  var params = new URLSearchParams();
  new FormData(form).forEach(function (value, name) { if (value !== "") params.set(name, value); });
  var query = params.toString();
  load(query ? "/console?" + query : "/console");
});
document.addEventListener("click", function (event) {
  var target = event.target;
  if (target.matches("#pager a")) { event.preventDefault(); load(target.getAttribute("href")); return; }
  var action = target.getAttribute("data-action");
  if (action === null) return;
  var owner = target.getAttribute("data-owner");
  var kind = target.getAttribute("data-kind");
  var question = action === "refresh"
    ? "Refresh the " + kind + " of " + owner + " now? WeChat is asked for a new value; the current one is replaced."
    : "Retire " + owner + "? Its credentials stop being refreshed and served on every replica until it is authorized again.";
  if (!window.confirm(question)) return;
  target.disabled = true;
  fetch("/console/api/" + action, { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify(action === "refresh" ? { owner: owner, kind: kind } : { owner: owner }) })
    .then(answer)
    .then(function (result) { say(result.message); return Promise.all([load(location.pathname + location.search), panels()]); })
    .catch(function (error) { say("Failed: " + error.message); target.disabled = false; });
});
ownerSelect.addEventListener("change", function () { timeline().catch(function (error) { say(error.message); }); });
panels();
setInterval(panels, 60000);
})();
`
