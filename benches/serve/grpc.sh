#!/usr/bin/env bash
# Serving benchmark, gRPC beside REST: skiff serve's two listeners and MLServer's two, all on
# 127.0.0.1, loaded in one run by one Rust client (crates/host/examples/load.rs: hyper, HTTP/1.1
# connections for REST and HTTP/2 connections for gRPC, bodies built once and answers read but
# not parsed, one request at a time per connection, as wrk). skiff's protocols take turns over
# ROUNDS rounds and each figure is the median round, so a busy moment of the box does not
# decide the ratio; MLServer, 20-50x slower, runs one round.
# gRPC requests carry the rows as raw_input_contents (tritonclient's way) and as typed
# fp32_contents (KServe's). Writes benches/serve/grpc-results.md and prints it.
#
# usage: benches/serve/grpc.sh
# env:   DURATION (15, seconds), WARMUP (2), THREADS (2), CONNECTIONS (64), ROUNDS (3),
#        SKIFF_CACHE (~/.cache/skiff; the Python venv lives there), CARGO_TARGET_DIR (target)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

DURATION=${DURATION:-15}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-3}
export THREADS
target_dir=${CARGO_TARGET_DIR:-$root/target}
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
venv=$cache/bench-venv
# The same Python side as run.sh.
py_reqs=(mlserver==1.7.1 mlserver-sklearn==1.7.1 scikit-learn==1.9.1 uvloop==0.21.0)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench-grpc.XXXXXX")
server_pid=""
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 -- "-$server_pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
cleanup() {
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v curl >/dev/null || die "curl is needed"
log "building skiff and the load generator (release)"
CARGO_TARGET_DIR=$target_dir cargo build --release --quiet --bin skiff -p skiff
CARGO_TARGET_DIR=$target_dir cargo build --release --quiet --example load -p skiff-host
skiff=$target_dir/release/skiff
load=$target_dir/release/examples/load

stamp="${py_reqs[*]}"
if [[ ! -x $venv/bin/mlserver || "$(cat "$venv/.bench-reqs" 2>/dev/null)" != "$stamp" ]]; then
    log "creating $venv with ${py_reqs[*]}"
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${py_reqs[@]}"
    printf '%s' "$stamp" >"$venv/.bench-reqs"
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

log "fitting iris with skiff and with scikit-learn"
"$skiff" fit logistic-regression --data examples/iris/train.csv --target species -o "$tmp/iris.onnx" >"$tmp/skiff-fit.log" 2>&1 \
    || { cat "$tmp/skiff-fit.log" >&2; die "skiff fit failed"; }
mkdir -p "$tmp/mlserver"
"$venv/bin/python" -W ignore "$here/fit_sklearn.py" examples/iris/train.csv species "$tmp/mlserver/iris" >&2

# Bodies: the first 1 and 64 feature rows of the training file (FP32 [N,4]), as run.sh's.
python3 - "$tmp" examples/iris/train.csv <<'PY'
import csv, json, sys
out, train = sys.argv[1], sys.argv[2]
with open(train, newline="") as f:
    rows = list(csv.DictReader(f))
cols = [c for c in rows[0] if c != "species"]
for n in (1, 64):
    data = [float(r[c]) for r in rows[:n] for c in cols]
    body = {"inputs": [{"name": "X", "shape": [n, len(cols)], "datatype": "FP32", "data": data}]}
    with open(f"{out}/body-{n}.json", "w") as f:
        json.dump(body, f, separators=(",", ":"))
PY

results=()   # lines: server|protocol|rows|rps|p50_us|p99_us|errors

# start NAME READY_URL -- COMMAND...: starts a server and waits until READY_URL answers 200.
start() {
    local name=$1 url=$2
    shift 3
    log "starting $name"
    setsid "$@" >"$tmp/$name.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 240); do   # up to 60 s: MLServer imports a lot before it listens
        kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/$name.log" >&2; die "$name exited"; }
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.25
    done
    cat "$tmp/$name.log" >&2
    die "$name was not ready within 60 s"
}

# run NAME PROTOCOL ADDR: a short check that every request succeeds, then 1 and 64 rows.
run() {
    local name=$1 protocol=$2 addr=$3 n line
    line=$("$load" "$protocol" "$addr" iris "$tmp/body-1.json" 1 0.5 0 | sed -n 's/^BENCH //p')
    if ! python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(r["errors"] > 0 or r["requests"] == 0)' "$line"; then
        # skiff must answer every way; a peer that does not is reported with its errors.
        [[ $name == skiff ]] && die "$name $protocol: requests fail: $line (see $tmp/$name.log)"
        log "$name $protocol: requests fail: $line; measuring anyway"
    fi
    for n in 1 64; do
        log "$name $protocol: $CONNECTIONS connections, ${DURATION}s after ${WARMUP}s, $n-row body"
        line=$("$load" "$protocol" "$addr" iris "$tmp/body-$n.json" "$CONNECTIONS" "$DURATION" "$WARMUP" \
            | sed -n 's/^BENCH //p')
        results+=("$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("|".join([*sys.argv[2:5], "%.0f" % r["rps"], str(r["p50_us"]), str(r["p99_us"]), str(r["errors"])]))
' "$line" "$name" "$protocol" "$n")")
        log "${results[-1]}"
    done
}

port=$(free_port); grpc_port=$(free_port)
start skiff "http://127.0.0.1:$port/v2/health/ready" -- \
    "$skiff" serve "$tmp/iris.onnx" --name iris --addr "127.0.0.1:$port" \
    --grpc-addr "127.0.0.1:$grpc_port" --drain-seconds 0
for _ in $(seq 1 "$ROUNDS"); do
    run skiff rest "127.0.0.1:$port"
    run skiff grpc "127.0.0.1:$grpc_port"
    run skiff grpc-typed "127.0.0.1:$grpc_port"
done
stop_server

# MLServer as in run.sh: its defaults, bound to 127.0.0.1, no metrics server, debug off,
# inference in the server process (its better showing on 2 cores).
port=$(free_port); grpc_port=$(free_port)
cat >"$tmp/mlserver/settings.json" <<JSON
{
  "host": "127.0.0.1",
  "http_port": $port,
  "grpc_port": $grpc_port,
  "metrics_endpoint": null,
  "debug": false,
  "parallel_workers": 0
}
JSON
start mlserver "http://127.0.0.1:$port/v2/models/iris/ready" -- \
    env -C "$tmp/mlserver" "$venv/bin/mlserver" start .
run mlserver rest "127.0.0.1:$port"
run mlserver grpc "127.0.0.1:$grpc_port"
run mlserver grpc-typed "127.0.0.1:$grpc_port"
stop_server

python3 - "$here/grpc-results.md" "$DURATION" "$WARMUP" "$THREADS" "$CONNECTIONS" "$ROUNDS" "${results[@]}" <<'PY'
import sys, os, datetime
out, duration, warmup, threads, conns, rounds, *lines = sys.argv[1:]
runs = {}
for line in lines:
    name, protocol, n, rps, p50, p99, errors = line.split("|")
    runs.setdefault((name, protocol, int(n)), []).append(
        dict(rps=float(rps), p50=int(p50), p99=int(p99), errors=int(errors)))
# Each figure: the round with the median requests/s (its latencies with it).
rows = {key: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for key, rs in runs.items()}
server = {"skiff": "skiff serve", "mlserver": "MLServer 1.7.1"}
way = {"rest": "REST (JSON)", "grpc": "gRPC, raw contents", "grpc-typed": "gRPC, typed contents"}
ms = lambda us: f"{us / 1000:.2f} ms"
md = [f"examples/load (Rust, hyper: HTTP/1.1 for REST, HTTP/2 for gRPC), {threads} threads, {conns} "
      f"connections, {duration} s after {warmup} s, skiff's median of {rounds} rounds, 127.0.0.1, "
      f"{os.cpu_count()} CPUs, "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "",
      "| server | protocol | body | req/s | p50 | p99 | errors |",
      "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
for n in (1, 64):
    for name in ("skiff", "mlserver"):
        for protocol in ("rest", "grpc", "grpc-typed"):
            r = rows[(name, protocol, n)]
            md.append(f'| {server[name]} | {way[protocol]} | {n} row{"s" if n > 1 else ""} | {r["rps"]:,.0f} '
                      f'| {ms(r["p50"])} | {ms(r["p99"])} | {r["errors"]} |')
md += ["", "| body | skiff gRPC / skiff REST (req/s) | skiff gRPC / MLServer gRPC (req/s) |", "| --- | ---: | ---: |"]
for n in (1, 64):
    s, sr, m = rows[("skiff", "grpc", n)], rows[("skiff", "rest", n)], rows[("mlserver", "grpc", n)]
    md.append(f'| {n} row{"s" if n > 1 else ""} | {s["rps"] / sr["rps"]:.2f} | {s["rps"] / max(m["rps"], 1):.1f}x |')
text = "\n".join(md) + "\n"
with open(out, "w") as f:
    f.write(text)
print(text)
PY
log "wrote benches/serve/grpc-results.md"
