#!/usr/bin/env bash
# Gradient boosting and MLP fit time: `skiff fit` (the whole command, CSV read included)
# beside scikit-learn (pandas read_csv + fit) and, for boosting, LightGBM, in one run, with
# the same hyperparameters on the same synthetic data (make_data.py), both cores each; and
# each model's metric on held-out rows. Writes benches/boost/results.md and prints it.
#
# usage: benches/boost/run.sh
# env:   ROWS (100000), BIG_ROWS (1000000; 0 leaves the big run out), MLP_ROWS (20000),
#        REPEAT (3: best of REPEAT fits), SKIFF_CACHE (~/.cache/skiff), CARGO_TARGET_DIR (target)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
ROWS=${ROWS:-100000}
BIG_ROWS=${BIG_ROWS:-1000000}
MLP_ROWS=${MLP_ROWS:-20000}
export REPEAT=${REPEAT:-3}
target_dir=${CARGO_TARGET_DIR:-$root/target}
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
venv=$cache/boost-bench-venv
log() { printf '[bench] %s\n' "$*" >&2; }

if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sklearn, lightgbm, pandas' 2>/dev/null; then
    log "creating $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q scikit-learn==1.9.1 lightgbm==4.7.0 numpy==2.4.6 pandas==3.1.1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-boost-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "building skiff (release)"
cargo build --locked --release --quiet --bin skiff
skiff=$target_dir/release/skiff

# One case: NAME ESTIMATOR DATA TARGET PEERS [skiff fit arguments...]
run_case() {
    local name=$1 estimator=$2 data=$3 target=$4 peers=$5
    shift 5
    for library in skiff $peers; do
        log "$name: $library"
        SKIFF=$skiff "$venv/bin/python" "$here/fit.py" "$library" "$estimator" "${data}_train.csv" \
            "${data}_test.csv" "$target" "$@" | sed "s/^{/{\"case\":\"$name\",/" >>"$tmp/results.jsonl"
    done
}

log "writing $ROWS x 20 data"
"$venv/bin/python" "$here/make_data.py" "$tmp/data" "$ROWS" classification regression
run_case "HGB classifier, $ROWS rows" hgb-classifier "$tmp/data/classification" label "sklearn lightgbm" \
    --set early_stopping=false
run_case "HGB regressor, $ROWS rows" hgb-regressor "$tmp/data/regression" y "sklearn lightgbm" \
    --set early_stopping=false
if [[ $BIG_ROWS != 0 ]]; then
    log "writing $BIG_ROWS x 20 data"
    "$venv/bin/python" "$here/make_data.py" "$tmp/big" "$BIG_ROWS" classification
    REPEAT=1 run_case "HGB classifier, $BIG_ROWS rows" hgb-classifier "$tmp/big/classification" label \
        "sklearn lightgbm" --set early_stopping=false
fi
log "writing $MLP_ROWS x 20 data"
"$venv/bin/python" "$here/make_data.py" "$tmp/mlp" "$MLP_ROWS" classification regression
run_case "MLP classifier, $MLP_ROWS rows" mlp-classifier "$tmp/mlp/classification" label sklearn \
    --scale standard --set random_state=0
run_case "MLP regressor, $MLP_ROWS rows" mlp-regressor "$tmp/mlp/regression" y sklearn \
    --scale standard --set random_state=0

"$venv/bin/python" - "$tmp/results.jsonl" "$here/results.md" "$REPEAT" <<'PY'
import datetime, json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
cases = list(dict.fromkeys(r["case"] for r in rows))
by = {(r["case"], r["library"]): r for r in rows}
md = [f"Wall time of a fit from CSV (skiff: `skiff fit`, the whole command; peers: pandas read_csv + fit), "
      f"best of {sys.argv[3]} (1 for the big run); 20 features, 80% of the rows for training; "
      f"{os.cpu_count()} CPUs; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "",
      "| case | skiff | scikit-learn | LightGBM | skiff / scikit-learn | skiff / LightGBM "
      "| test metric: skiff, scikit-learn, LightGBM |",
      "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
def seconds(r):
    return f"{r['seconds']:.2f} s" if r else "-"
for case in cases:
    s, k, l = by.get((case, "skiff")), by.get((case, "sklearn")), by.get((case, "lightgbm"))
    ratio = lambda peer: f"{s['seconds'] / peer['seconds']:.2f}x" if peer else "-"
    metrics = ", ".join(f"{r['metric']:.4f}" for r in (s, k, l) if r)
    md.append(f"| {case} | {seconds(s)} | {seconds(k)} | {seconds(l)} | {ratio(k)} | {ratio(l)} | {metrics} |")
text = "\n".join(md) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
PY
