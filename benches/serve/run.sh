#!/usr/bin/env bash
# Serving benchmark: skiff serve vs MLServer (scikit-learn runtime) vs a hello-world axum
# server (the box's limit for this HTTP stack), all on 127.0.0.1, loaded by wrk in one run.
# Writes the table to benches/serve/results.md and prints it.
#
# usage: benches/serve/run.sh
# env:   DURATION (15s), WARMUP (2s), THREADS (2), CONNECTIONS (64),
#        SKIFF_CACHE (~/.cache/skiff; the Python venv lives there), CARGO_TARGET_DIR (target)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
target_dir=${CARGO_TARGET_DIR:-$root/target}
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
venv=$cache/bench-venv
# The Python side, pinned: the peer server and the library that fits its model.
# uvloop 0.22+ breaks MLServer 1.7.1's inference workers ("There is no current event loop").
py_reqs=(mlserver==1.7.1 mlserver-sklearn==1.7.1 scikit-learn==1.9.1 uvloop==0.21.0)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench.XXXXXX")
server_pid=""
# Each server runs in its own process group (setsid): stop the group, SIGKILL after 10 s
# (MLServer does not always exit on SIGTERM).
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

# ---------------------------------------------------------------- prerequisites
if ! command -v wrk >/dev/null; then
    log "installing wrk (Debian)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
        || die "cannot install wrk"
fi
command -v curl >/dev/null || die "curl is needed"

log "building skiff and the hello example (release)"
CARGO_TARGET_DIR=$target_dir cargo build --release --quiet --bin skiff -p skiff
CARGO_TARGET_DIR=$target_dir cargo build --release --quiet --example hello -p skiff-host
skiff=$target_dir/release/skiff
hello=$target_dir/release/examples/hello

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

# ---------------------------------------------------------------- models and bodies
log "fitting iris with skiff and with scikit-learn"
"$skiff" fit logistic-regression --data examples/iris/train.csv --target species -o "$tmp/iris.onnx" >"$tmp/skiff-fit.log" 2>&1 \
    || { cat "$tmp/skiff-fit.log" >&2; die "skiff fit failed"; }
mkdir -p "$tmp/mlserver"
"$venv/bin/python" -W ignore "$here/fit_sklearn.py" examples/iris/train.csv species "$tmp/mlserver/iris" >&2

# Bodies: the first 1 and 64 feature rows of the training file (FP32 [N,4]), row-major.
# skiff and hello name the input "X" (the name skiff's ONNX export gives it);
# MLServer's SKLearnModel decodes the single input with NumpyRequestCodec whatever its name.
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
    with open(f"{out}/expect-{n}.txt", "w") as f:
        f.write("\n".join(r["species"] for r in rows[:n]) + "\n")
PY

# ---------------------------------------------------------------- one server
# Labels in an OIP response: the first output called label (skiff) or predict (MLServer).
labels_of() {
    python3 -c '
import json, sys
r = json.load(sys.stdin)
outs = {o["name"]: o for o in r["outputs"]}
o = outs.get("label") or outs.get("predict") or r["outputs"][0]
data = o["data"]
while data and isinstance(data[0], list):
    data = [x for row in data for x in row]
print("\n".join(str(x) for x in data))'
}

results=()   # lines: server|rows|rps|p50_us|p99_us|errors

# bench NAME URL CHECK_LABELS(yes|no) -- COMMAND...
bench() {
    local name=$1 url=$2 check=$3
    shift 4
    log "starting $name"
    setsid "$@" >"$tmp/$name.log" 2>&1 &
    server_pid=$!
    local ready=""
    for _ in $(seq 1 240); do   # up to 60 s: MLServer imports a lot before it listens
        kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/$name.log" >&2; die "$name exited"; }
        if curl -fsS -o "$tmp/$name-1.out" -H 'Content-Type: application/json' \
            --data-binary "@$tmp/body-1.json" "$url" 2>/dev/null; then
            ready=yes
            break
        fi
        sleep 0.25
    done
    [[ -n $ready ]] || { cat "$tmp/$name.log" >&2; die "$name did not answer within 60 s"; }
    for n in 1 64; do
        curl -fsS -o "$tmp/$name-$n.out" -H 'Content-Type: application/json' \
            --data-binary "@$tmp/body-$n.json" "$url" || die "$name: $n-row request failed"
        if [[ $check == yes ]]; then
            labels_of <"$tmp/$name-$n.out" >"$tmp/$name-$n.labels" \
                || die "$name: cannot read labels from $(head -c 300 "$tmp/$name-$n.out")"
            local got agree
            got=$(wc -l <"$tmp/$name-$n.labels")
            [[ $got -eq $n ]] || die "$name: $got labels for $n rows: $(head -c 300 "$tmp/$name-$n.out")"
            agree=$(paste -d' ' "$tmp/$name-$n.labels" "$tmp/expect-$n.txt" | awk '$1==$2' | wc -l)
            log "$name: $n-row answer has $n labels, $agree agree with the true species"
            if [[ $n -eq 1 && $agree -ne 1 ]]; then
                die "$name: wrong label for the 1-row body: $(cat "$tmp/$name-1.out")"
            fi
        fi
    done
    log "$name: warm-up $WARMUP"
    BODY_FILE=$tmp/body-1.json wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$here/post.lua" "$url" >/dev/null
    for n in 1 64; do
        log "$name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $n-row body"
        BODY_FILE=$tmp/body-$n.json wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
            -s "$here/post.lua" "$url" >"$tmp/wrk-$name-$n.txt"
        local line
        line=$(grep '^BENCH ' "$tmp/wrk-$name-$n.txt" | sed 's/^BENCH //') \
            || { cat "$tmp/wrk-$name-$n.txt" >&2; die "no result from wrk"; }
        results+=("$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
errors = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
detail = "non-2xx {non2xx}, connect {connect}, read {read}, write {write}, timeout {timeout}".format(**r)
print("|".join([sys.argv[2], sys.argv[3], "%.0f" % r["rps"], str(r["p50_us"]), str(r["p99_us"]), str(errors), detail]))
' "$line" "$name" "$n")")
        log "$name $n-row: ${results[-1]}"
    done
    stop_server
}

# skiff serve: the model from `skiff fit`, no drain delay on stop.
port=$(free_port)
bench skiff "http://127.0.0.1:$port/v2/models/iris/infer" yes -- \
    "$skiff" serve "$tmp/iris.onnx" --name iris --addr "127.0.0.1:$port" --drain-seconds 0

# skiff serve with dynamic batching: concurrent requests merged for up to 200 µs.
port=$(free_port)
bench skiff-batch "http://127.0.0.1:$port/v2/models/iris/infer" yes -- \
    "$skiff" serve "$tmp/iris.onnx" --name iris --addr "127.0.0.1:$port" --drain-seconds 0 \
    --batch-delay-us 200

# MLServer: its defaults except: bind 127.0.0.1, free ports, no metrics server, debug off
# (debug writes an access-log line per request), and inference in the server process
# (parallel_workers 0): on 2 cores that answers ~1.6x the requests/s of the default single
# worker process, so the comparison gives MLServer its better showing.
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
bench mlserver "http://127.0.0.1:$port/v2/models/iris/infer" yes -- \
    env -C "$tmp/mlserver" "$venv/bin/mlserver" start .

# hello: parses the body, answers a fixed response.
port=$(free_port)
bench hello "http://127.0.0.1:$port/v2/models/iris/infer" no -- "$hello" "127.0.0.1:$port"

# ---------------------------------------------------------------- report
python3 - "$here/results.md" "$DURATION" "$THREADS" "$CONNECTIONS" "${results[@]}" <<'PY'
import sys, platform, os, datetime
out, duration, threads, conns, *lines = sys.argv[1:]
rows = {}
for line in lines:
    name, n, rps, p50, p99, errors, detail = line.split("|")
    rows[(name, int(n))] = dict(rps=float(rps), p50=int(p50), p99=int(p99), errors=int(errors), detail=detail)
label = {"skiff": "skiff serve", "skiff-batch": "skiff serve, batching 200 µs", "mlserver": "MLServer 1.7.1", "hello": "hello (axum, fixed answer)"}
ms = lambda us: f"{us / 1000:.2f} ms"
md = []
md.append(f"wrk -t{threads} -c{conns} -d{duration} --latency, 127.0.0.1, {os.cpu_count()} CPUs, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
md.append("")
md.append("| server | body | req/s | p50 | p99 | errors |")
md.append("| --- | --- | ---: | ---: | ---: | ---: |")
for n in (1, 64):
    for name in ("skiff", "skiff-batch", "mlserver", "hello"):
        r = rows[(name, n)]
        err = str(r["errors"]) if r["errors"] == 0 else f'**{r["errors"]}** ({r["detail"]})'
        md.append(f'| {label[name]} | {n} row{"s" if n > 1 else ""} | {r["rps"]:,.0f} | {ms(r["p50"])} | {ms(r["p99"])} | {err} |')
md.append("")
md.append("| body | skiff / MLServer (req/s) | skiff / hello (req/s) | skiff / hello (p99) |")
md.append("| --- | ---: | ---: | ---: |")
for n in (1, 64):
    s, m, h = rows[("skiff", n)], rows[("mlserver", n)], rows[("hello", n)]
    md.append(f'| {n} row{"s" if n > 1 else ""} | {s["rps"] / m["rps"]:.1f}x | {s["rps"] / h["rps"]:.2f} | {s["p99"] / h["p99"]:.2f} |')
bad = [f"{k[0]} {k[1]}-row: {v['detail']}" for k, v in rows.items() if v["errors"]]
if bad:
    md.append("")
    md.append("ERRORS (must be 0): " + "; ".join(bad))
text = "\n".join(md) + "\n"
with open(out, "w") as f:
    f.write(text)
print(text)
PY
log "wrote benches/serve/results.md"
