#!/usr/bin/env bash
# Estimator benchmarks, skiff beside scikit-learn and ONNX Runtime in one run:
#   1. fit time of each estimator on the same ROWS x 20 synthetic data (make_data.py), the fit
#      alone and the whole command (`skiff fit` beside pandas read_csv + fit), and CSV reading;
#   2. single-row predict latency: native Rust, tract on the exported file (criterion),
#      ONNX Runtime on the same file.
# Writes benches/learn/results.md and prints it.
#
# usage: benches/learn/run.sh
# env:   ROWS (100000), REPEAT (1: best of REPEAT fits), ONLY (a,b: just these estimators),
#        SKIFF_CACHE (~/.cache/skiff),
#        CARGO_TARGET_DIR (target)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
ROWS=${ROWS:-100000}
export REPEAT=${REPEAT:-1}
target_dir=${CARGO_TARGET_DIR:-$root/target}
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
venv=$cache/learn-bench-venv
log() { printf '[bench] %s\n' "$*" >&2; }

if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sklearn, onnxruntime, pandas' 2>/dev/null; then
    log "creating $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q scikit-learn==1.9.1 onnxruntime==1.32.0 numpy==2.4.6 pandas==3.1.1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-learn-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "writing $ROWS x 20 data sets"
"$venv/bin/python" "$here/make_data.py" "$tmp/data" "$ROWS"
log "skiff fit times (REPEAT=$REPEAT)"
cargo bench --locked --quiet --bench fit -- "$tmp/data" | tee "$tmp/fit-skiff.jsonl" >&2
log "scikit-learn fit times"
"$venv/bin/python" "$here/fit_sklearn.py" "$tmp/data" | tee "$tmp/fit-sklearn.jsonl" >&2
log "whole commands: skiff fit beside pandas read_csv + scikit-learn fit"
cargo build --locked --quiet --release --bin skiff
"$venv/bin/python" "$here/cli_wall.py" "$tmp/data" "$target_dir/release/skiff" "$tmp/fit-skiff.jsonl" \
    | tee "$tmp/cli-wall.jsonl" >&2
log "single-row latency: native and tract (criterion)"
export SKIFF_BENCH_ONNX=$tmp/onnx
cargo bench --locked --quiet --bench latency -- --warm-up-time 1 --measurement-time 3 >&2
log "single-row latency: ONNX Runtime"
"$venv/bin/python" "$here/latency_ort.py" "$tmp/onnx" | tee "$tmp/latency-ort.jsonl" >&2

"$venv/bin/python" - "$tmp" "$target_dir/criterion/predict_1_row" "$here/results.md" "$ROWS" "$REPEAT" <<'PY'
import datetime, json, os, pathlib, sys
tmp, criterion, out, rows, repeat = sys.argv[1:]
def lines(name):
    return {r["estimator"]: r for r in map(json.loads, open(os.path.join(tmp, name)))}
skiff, sklearn, ort = lines("fit-skiff.jsonl"), lines("fit-sklearn.jsonl"), lines("latency-ort.jsonl")
cli = lines("cli-wall.jsonl")
def median_ns(kind, name):
    path = pathlib.Path(criterion, kind, name, "new", "estimates.json")
    return json.loads(path.read_text())["median"]["point_estimate"]
def seconds(s):
    return f"{s * 1000:,.1f} ms" if s < 1 else f"{s:,.2f} s"
def micro(ns):
    return f"{ns / 1000:,.2f} µs"
md = [f"{int(rows):,} rows x 20 features, best of {repeat} fit(s); {os.cpu_count()} CPUs; "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "",
      "| estimator | skiff fit | scikit-learn fit | skiff / scikit-learn | `skiff fit` command | pandas read + fit | skiff / scikit-learn |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
def ratio(s, k):
    r = s / k
    return f"**{r:.2f}x**" if r > 1 else f"{r:.2f}x"
for name, r in skiff.items():
    s, k = r["seconds"], sklearn[name]["seconds"]
    c = cli[name]
    md.append(f"| {name} | {seconds(s)} | {seconds(k)} | {ratio(s, k)} | {seconds(c['skiff'])} | "
              f"{seconds(c['sklearn'])} | {ratio(c['skiff'], c['sklearn'])} |")
reads = {r["data"]: (r["read_seconds"], sklearn[name]["read_seconds"]) for name, r in skiff.items()}
md += ["", "Reading each CSV into a float64 matrix (skiff's `Table` beside pandas' `read_csv`):", "",
       "| data | skiff | pandas | skiff / pandas |", "| --- | ---: | ---: | ---: |"]
for data, (s, k) in reads.items():
    md.append(f"| {data}.csv | {seconds(s)} | {seconds(k)} | {ratio(s, k)} |")
md += ["", "Single-row predict latency, in process (median):", "",
       "| estimator | native Rust | tract (exported file) | ONNX Runtime (same file) | tract / ONNX Runtime |",
       "| --- | ---: | ---: | ---: | ---: |"]
for name in skiff:
    try:
        n, t = median_ns("native", name), median_ns("tract", name)
    except FileNotFoundError:
        continue
    o = ort[name]["ns"]
    md.append(f"| {name} | {micro(n)} | {micro(t)} | {micro(o)} | {t / o:.2f}x |")
text = "\n".join(md) + "\n"
open(out, "w").write(text)
print(text)
PY
