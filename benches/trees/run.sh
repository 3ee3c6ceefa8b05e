#!/usr/bin/env bash
# Tree ensembles: skiff's TreeEnsembleClassifier kernel on tract beside ONNX Runtime (one
# thread, one session), on scikit-learn forests of 100 trees (two classes and four), at
# batch 1 and 4,096 rows, through `skiff bench` in one run. Writes benches/trees/results.md
# and prints it.
#
# usage: benches/trees/run.sh
# env:   SECONDS_PER (2: time per backend and batch size), SKIFF_CACHE (~/.cache/skiff),
#        CARGO_TARGET_DIR (target)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
venv=$cache/trees-bench-venv
log() { printf '[bench] %s\n' "$*" >&2; }

if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sklearn, onnxruntime, skl2onnx' 2>/dev/null; then
    log "creating $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q scikit-learn==1.9.1 onnxruntime==1.32.0 numpy==2.4.6 skl2onnx==1.20.0 \
        onnx==1.23.2 protobuf==6.31.1
fi
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-trees-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "building skiff (release)"
cargo build --locked --release --quiet --bin skiff
skiff=$target_dir/release/skiff
log "fitting the forests"
"$venv/bin/python" "$here/make_forests.py" "$tmp"
for name in binary multiclass; do
    log "skiff bench: forest_$name"
    "$skiff" bench "$tmp/forest_$name.onnx" --data "$tmp/rows_$name.csv" --backends tract,ort \
        --intra-op-threads 1 --instances 1 --batch-sizes 1,4096 --seconds "${SECONDS_PER:-2}" --json \
        | sed "s/^{/{\"forest\":\"$name\",/" >>"$tmp/bench.jsonl"
done

"$venv/bin/python" - "$tmp/bench.jsonl" "$here/results.md" <<'PY'
import datetime, json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
runs = {(r["forest"], r["backend"], r["batch"]): r["rows_per_second"] for r in rows if r["event"] == "throughput"}
md = [f"scikit-learn RandomForestClassifier(n_estimators=100, max_depth=10), 20 features, skl2onnx; "
      f"ONNX Runtime with 1 intra-op thread and 1 session; {os.cpu_count()} CPUs; "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "",
      "| forest | batch | skiff (tract), rows/s | ONNX Runtime, rows/s | skiff / ONNX Runtime |",
      "| --- | ---: | ---: | ---: | ---: |"]
for forest in ("binary", "multiclass"):
    for batch in (1, 4096):
        tract, ort = runs[(forest, "tract", batch)], runs[(forest, "onnxruntime-cpu", batch)]
        md.append(f"| {forest} | {batch:,} | {tract:,.0f} | {ort:,.0f} | {tract / ort:.2f}x |")
text = "\n".join(md) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
PY
