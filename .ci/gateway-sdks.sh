#!/usr/bin/env bash
# The gateway's SDK tests (test/gateway/Sdks.test.ts) drive real WeChat SDKs
# from npm: they are installed into test/gateway/sdk/ at the exact versions
# its lockfile pins, never into the project itself. A second run with the
# same lockfile finds them installed and does nothing.
set -euo pipefail
cd "$(dirname "$0")/../test/gateway/sdk"
stamp=node_modules/.installed-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
# Run under `npm test`, npm's own npm_* variables would point this install at the project.
for name in $(compgen -e | grep -i '^npm_' || true); do unset "$name"; done
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
echo "$want" > "$stamp"
