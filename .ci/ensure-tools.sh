#!/usr/bin/env bash
# The tests need programs beyond Node: a real redis-server (Redis store and
# replica tests; Debian's is built with TLS and runs sentinels as
# `redis-server --sentinel`), redis-cli (`--cluster create`; Debian's
# redis-tools, which redis-server depends on), openssl (the TLS tests make
# their own CA and certificates), curl (the demo test runs the curl line the demo prints) and
# promtool (the /metrics test runs `promtool check metrics`; Debian ships it in
# the `prometheus` package), nginx and systemd-analyze (the deployment files in
# deploy/ are checked with `nginx -t` and `systemd-analyze verify`; Debian's
# `systemd` package) and chromium (the /docs page and the console are loaded in
# headless Chromium through playwright-core). Install the Debian packages when they are missing
# and we may (root); otherwise say what to do.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "missing ${missing[*]}: installing Debian's packages" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") >&2
else
  echo "missing ${missing[*]}: install them (e.g. sudo apt-get install -y ${missing[*]}) and run the tests again" >&2
  exit 1
fi
