#!/usr/bin/env bash
# Throughput of the reference platform (sandbox) on one core, JSON and HTML listing pages.
#
# Starts `python -m sandbox --profile clean` pinned to CPU 0, logs in demo1 with curl (CSRF
# form + cookie jar), then runs wrk pinned to CPU 1 with the session cookie as a header,
# cycling through every domain and page so the page cache is exercised as a crawl would.
# Prints pages/s per form and stops the sandbox (also on Ctrl-C or failure).
#
# Usage: bench/sandbox_load.sh [SECONDS=10] [CONNECTIONS=32]
# Needs: wrk (apt-get install -y wrk), curl, taskset; the venv at .venv.
set -euo pipefail

DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
PAGES=50
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d)"
SANDBOX_PID=""

cleanup() {
  if [[ -n "$SANDBOX_PID" ]] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
    kill -TERM "$SANDBOX_PID"; wait "$SANDBOX_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
CPUS=$(nproc)
SERVER_CPU=0; CLIENT_CPU=$(( CPUS > 1 ? 1 : 0 ))

cd "$ROOT"
taskset -c "$SERVER_CPU" "$PY" -m sandbox --port 0 --profile clean --pages "$PAGES" \
  --log-level warning >"$WORK/out" 2>"$WORK/err" &
SANDBOX_PID=$!
for _ in $(seq 100); do grep -q "sandbox serving" "$WORK/out" 2>/dev/null && break; sleep 0.05; done
URL=$(awk '/sandbox serving/ {print $3}' "$WORK/out")
[[ -n "$URL" ]] || { echo "sandbox did not start:" >&2; cat "$WORK/err" >&2; exit 1; }

curl -sf -c "$WORK/jar" -b "$WORK/jar" "$URL/login" >/dev/null
TOKEN=$(awk '$6 == "csrftoken" {print $7}' "$WORK/jar")
curl -sf -o /dev/null -c "$WORK/jar" -b "$WORK/jar" \
  --data-urlencode username=demo1 --data-urlencode password=sandbox-demo1 \
  --data-urlencode "csrf_token=$TOKEN" "$URL/login"
SID=$(awk '$6 == "sid" {print $7}' "$WORK/jar")
[[ -n "$SID" ]] || { echo "login failed" >&2; exit 1; }

DOMAINS_LUA=$("$PY" -c 'from urllib.parse import quote; from sandbox.data import DEFAULT_DOMAINS as D
print(", ".join(chr(34) + quote(d) + chr(34) for d in D))')

run() {  # $1 = label, $2 = path
  cat >"$WORK/paths.lua" <<LUA
local domains = { $DOMAINS_LUA }
local pages = $PAGES
local i = 0
request = function()
  i = i + 1
  local d = domains[(i % #domains) + 1]
  local p = (math.floor(i / #domains) % pages) + 1
  return wrk.format("GET", "$2?domain=" .. d .. "&page=" .. p)
end
LUA
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" \
    -H "Cookie: sid=$SID" -s "$WORK/paths.lua" "$URL" >"$WORK/wrk.txt"
  local rps errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
  errors=$(awk '/Non-2xx/ {print $5}' "$WORK/wrk.txt")
  printf '%-5s %10s pages/s  (non-2xx: %s; %s)\n' "$1" "$rps" "${errors:-0}" \
    "$(awk '/Latency/ {print "latency avg " $2 ", max " $4}' "$WORK/wrk.txt")"
}

echo "sandbox on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU, ${DURATION}s, $CONNECTIONS connections"
run JSON /api/v1/influencers
run HTML /square
