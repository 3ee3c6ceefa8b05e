#!/usr/bin/env bash
# Explanations and fairness: `skiff explain shap|importance` and `skiff fairness` (the whole
# command) beside shap, scikit-learn and Fairlearn on the same models and rows, in one run
# (bench.py says what each case times). Writes benches/explain/results.md and prints it.
#
# usage: benches/explain/run.sh
# env:   ROWS (10000: the last 1,000 are explained), REPEAT (3: best of REPEAT),
#        SKIFF_CACHE (~/.cache/skiff), CARGO_TARGET_DIR (target)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
ROWS=${ROWS:-10000}
REPEAT=${REPEAT:-3}
target_dir=${CARGO_TARGET_DIR:-$root/target}
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
venv=$cache/explain-bench-venv
log() { printf '[bench] %s\n' "$*" >&2; }

packages=(scikit-learn==1.9.1 numpy==2.4.6 pandas==3.1.1 shap==0.51.0 numba==0.68.1
    llvmlite==0.50.0 fairlearn==0.15.0 skl2onnx==1.20.0 onnx==1.23.2 protobuf==6.33.5)
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import shap, fairlearn, skl2onnx' 2>/dev/null; then
    log "creating $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "${packages[@]}"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-explain-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "building skiff (release)"
cargo build --locked --release --quiet --bin skiff
log "timing on $ROWS rows"
{
    echo "Wall time, best of $REPEAT; $ROWS rows of 20 features, the last 1,000 explained or scored; $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| case | skiff | peer | peer's time | skiff / peer |"
    echo "| --- | ---: | --- | ---: | ---: |"
    "$venv/bin/python" "$here/bench.py" "$tmp" "$target_dir/release/skiff" "$ROWS" "$REPEAT"
} >"$tmp/results.md"
mv "$tmp/results.md" "$here/results.md"
cat "$here/results.md"
