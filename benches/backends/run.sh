#!/usr/bin/env bash
# Backends: `skiff bench` runs tract (skiff's default) and ONNX Runtime's CPU provider on the
# same model at batch sizes 1 to 65,536, one request at a time: ONNX Runtime on one thread (one
# session), then on every core. Models: scikit-learn random forests converted by skl2onnx (two
# classes and four), skiff's own random forest on breast_cancer, and benches/gpu/mlp.onnx.
# Writes benches/backends/results.md and prints it.
#
# usage: benches/backends/run.sh
# env:   SECONDS_PER (2: time per backend and batch size), BATCHES (1,16,256,4096,65536),
#        SKIFF_CACHE (~/.cache/skiff), CARGO_TARGET_DIR (target)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
venv=$cache/backends-bench-venv
batches=${BATCHES:-1,16,256,4096,65536}
seconds=${SECONDS_PER:-2}
log() { printf '[bench] %s\n' "$*" >&2; }

if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sklearn, onnxruntime, skl2onnx' 2>/dev/null; then
    log "creating $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q scikit-learn==1.9.1 onnxruntime==1.32.0 numpy==2.4.6 skl2onnx==1.20.0 \
        onnx==1.23.2 protobuf==6.31.1
fi
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-backends-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "building skiff (release)"
cargo build --locked --release --quiet --bin skiff
skiff=$target_dir/release/skiff
log "fitting the forests"
"$venv/bin/python" "$here/make_forests.py" "$tmp"
"$skiff" fit random-forest-classifier --data tests/data/breast_cancer/train.csv --target diagnosis \
    --set n_estimators=100 -o "$tmp/forest_skiff.onnx" >/dev/null

# name|model|rows (empty: skiff bench draws random rows)
models=("sklearn forest, 2 classes|$tmp/forest_binary.onnx|$tmp/rows_binary.csv"
    "sklearn forest, 4 classes|$tmp/forest_multiclass.onnx|$tmp/rows_multiclass.csv"
    "skiff forest, breast_cancer|$tmp/forest_skiff.onnx|tests/data/breast_cancer/test.csv"
    "MLP 64-256-256-8|benches/gpu/mlp.onnx|")
for m in "${models[@]}"; do
    IFS='|' read -r name model rows <<<"$m"
    for run in "tract,ort 1" "ort $(nproc)"; do
        read -r backends threads <<<"$run"
        log "skiff bench: $name, $backends, ONNX Runtime on $threads thread(s)"
        "$skiff" bench "$model" ${rows:+--data "$rows"} --backends "$backends" --intra-op-threads "$threads" \
            --instances 1 --batch-sizes "$batches" --seconds "$seconds" --json \
            | NAME=$name THREADS=$threads python3 -c 'import json, os, sys
for line in sys.stdin:
    r = json.loads(line); r["model"] = os.environ["NAME"]; r["ort_threads"] = int(os.environ["THREADS"]); print(json.dumps(r))' \
            >>"$tmp/bench.jsonl"
    done
done

"$venv/bin/python" - "$tmp/bench.jsonl" "$here/results.md" <<'PY'
import datetime, json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
cores = os.cpu_count()
speed = {}
for r in rows:
    if r["event"] == "agreement" and not r["agrees"]:
        sys.exit(f"{r['model']}: {r['backend']} disagrees with tract")
    if r["event"] == "throughput":
        column = "tract" if r["backend"] == "tract" else f"ort{r['ort_threads']}"
        speed[(r["model"], r["batch"], column)] = r["rows_per_second"]
md = [f"`skiff bench`, one request at a time; ONNX Runtime CPU provider, one session; {cores} CPUs; "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "",
      f"| model | batch | tract rows/s | ORT 1 thread | ORT {cores} threads | tract / ORT 1 thread |",
      "| --- | ---: | ---: | ---: | ---: | ---: |"]
for model in dict.fromkeys(m for m, _, _ in speed):
    for batch in sorted({b for m, b, _ in speed if m == model}):
        t, o1, on = (speed.get((model, batch, c)) for c in ("tract", "ort1", f"ort{cores}"))
        md.append(f"| {model} | {batch:,} | {t:,.0f} | {o1:,.0f} | {on:,.0f} | {t / o1:.2f}x |")
text = "\n".join(md) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
PY
