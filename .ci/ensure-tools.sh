#!/usr/bin/env bash
# The Redis store tests run a real redis-server on loopback. Install Debian's
# package when it is missing and we may (root); otherwise say what to do.
set -euo pipefail
command -v redis-server >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server is missing: installing Debian's redis-server package" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
else
  echo "redis-server is missing: install it (e.g. sudo apt-get install -y redis-server) and run the tests again" >&2
  exit 1
fi
