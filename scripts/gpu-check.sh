#!/usr/bin/env bash
# Checks skiff's CUDA backend on a machine with an NVIDIA GPU, offline, and writes every result
# to one Markdown file:
#
#   scripts/gpu-check.sh SKIFF ORT_DIR [RESULTS.md]
#
#   SKIFF    a skiff binary built for x86-64 glibc with the default features (cargo build
#            --release); no Rust toolchain is needed here
#   ORT_DIR  the folder of ONNX Runtime's libraries with the CUDA provider: the onnxruntime/capi
#            folder of the onnxruntime-gpu wheel (libonnxruntime.so.1.*, and
#            libonnxruntime_providers_{shared,cuda}.so beside it)
#
# Steps, each reported as it runs:
#   1. fits every case of tests/conformance.json with skiff, and takes the skl2onnx fixtures;
#   2. parity: every model on tract and on ONNX Runtime's CPU provider (labels identical,
#      numbers within 1e-4);
#   3. CUDA: stops here, saying why, where the provider or a device is missing (exit 3);
#   4. parity of every model on CUDA against tract;
#   5. throughput of tract, ONNX Runtime CPU and CUDA for a random forest (100 trees) and an MLP
#      (benches/gpu/mlp.onnx) at batch sizes 1 to 65,536.
# The CUDA libraries the provider loads (libcudart, libcublas, libcudnn, ...) are looked for in
# LD_LIBRARY_PATH and in the nvidia-* Python packages of python3 (PyTorch's CUDA wheels).
# Python 3 (standard library only) reads the cases and writes the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/gpu-check.sh SKIFF ORT_DIR [RESULTS.md]"
skiff=$(realpath "${1:?$usage}")
ort_dir=$(realpath "${2:?$usage}")
results=$(realpath -m "${3:-gpu-check-results.md}")
batches=1,16,256,4096,65536
seconds=${GPU_CHECK_SECONDS:-1}

"$skiff" --version >/dev/null || { echo "gpu-check: $skiff does not run" >&2; exit 2; }
ORT_DYLIB_PATH=$(ls "$ort_dir"/libonnxruntime.so* 2>/dev/null | sort | tail -n 1 || true)
[ -n "$ORT_DYLIB_PATH" ] || { echo "gpu-check: no libonnxruntime.so in $ort_dir: pass the onnxruntime/capi folder of the onnxruntime-gpu wheel" >&2; exit 2; }
export ORT_DYLIB_PATH
nvidia_libs=$(python3 - <<'EOF' 2>/dev/null || true
import glob, importlib.util, os
spec = importlib.util.find_spec("nvidia")
roots = list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else []
print(":".join(sorted(d for r in roots for d in glob.glob(os.path.join(r, "*", "lib")))))
EOF
)
export LD_LIBRARY_PATH=${nvidia_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/results.jsonl
started=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

# Writes the results file from what is in the log so far; $1 is the run's outcome.
write_results() {
  python3 - "$log" "$results" "$1" "$ORT_DYLIB_PATH" "$("$skiff" --version)" <<'EOF'
import json, subprocess, sys
log, out, outcome, ort, version = sys.argv[1:]
rows = [json.loads(l) for l in open(log)]
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout.strip() or "none found"
except (OSError, subprocess.TimeoutExpired):
    gpu = "none found (no nvidia-smi)"
lines = ["# skiff GPU check", "", f"- outcome: {outcome}", f"- skiff: {version}", f"- ONNX Runtime: {ort}",
         f"- GPU: {gpu}", ""]
agree = [r for r in rows if r.get("event") == "agreement"]
if agree:
    lines += ["## Parity (against tract)", "", "| model | backend | rows | agrees | largest difference |",
              "| --- | --- | ---: | --- | ---: |"]
    lines += [f"| {r['model']} | {r['backend']} | {r['rows']} | {'yes' if r['agrees'] else 'NO'} | {r['max_abs_difference']:.2e} |"
              for r in agree]
    lines.append("")
speed = [r for r in rows if r.get("event") == "throughput"]
if speed:
    backends = list(dict.fromkeys(r["backend"] for r in speed))
    lines += ["## Throughput (rows/s; one request at a time)", "",
              "| model | batch | " + " | ".join(backends) + " |", "| --- | ---: |" + " ---: |" * len(backends)]
    for model in dict.fromkeys(r["model"] for r in speed):
        for batch in dict.fromkeys(r["batch"] for r in speed if r["model"] == model):
            cells = {r["backend"]: r["rows_per_second"] for r in speed if r["model"] == model and r["batch"] == batch}
            lines.append(f"| {model} | {batch} | " + " | ".join(f"{cells[b]:,.0f}" if b in cells else "-" for b in backends) + " |")
    lines.append("")
lines += ["## Raw results", "", "```"] + [json.dumps(r) for r in rows] + ["```", ""]
open(out, "w").write("\n".join(lines))
EOF
}

# Runs `skiff bench MODEL ARGS...` and adds its JSON lines, tagged with the model's name, to the log.
bench() {
  local name=$1 model=$2; shift 2
  local status=0
  "$skiff" bench "$model" --json "$@" >"$work/bench.out" 2>"$work/bench.err" || status=$?
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l); r["model"] = sys.argv[2]; print(json.dumps(r))' "$work/bench.out" "$name" >>"$log"
  [ $status = 0 ] || { cat "$work/bench.err" >&2; return $status; }
}

step "1. models: the conformance cases, fitted by skiff, and the skl2onnx fixtures"
: >"$log"
python3 - "$work" <<'EOF' >"$work/cases.tsv"
import json, sys
for i, c in enumerate(json.load(open("tests/conformance.json"))):
    args = ["fit", c["estimator"], "--data", f"{c['dataset']}/train.csv", "--target", c["target"]]
    for k, v in c.get("set", {}).items():
        args += ["--set", f"{k}={v}"]
    if c.get("scale"):
        args += ["--scale", c["scale"]]
    for column in c.get("drop", []):
        args += ["--drop", column]
    name = f"{c['estimator']}-{c['dataset'].rsplit('/', 1)[-1]}-{i}"
    print("\t".join([name, f"{c['dataset']}/test.csv"] + args))
EOF
models=()
while IFS=$'\t' read -r name test rest; do
  IFS=$'\t' read -r -a fit_args <<<"$rest"
  "$skiff" "${fit_args[@]}" -o "$work/$name.onnx" >/dev/null
  models+=("$name|$work/$name.onnx|$test")
done <"$work/cases.tsv"
for f in tests/fixtures/skl2onnx/*.onnx; do
  models+=("skl2onnx/$(basename "$f" .onnx)|$f|")
done
echo "${#models[@]} models"

parity() {
  local backends=$1 failed=0
  for m in "${models[@]}"; do
    IFS='|' read -r name file test <<<"$m"
    bench "$name" "$file" --backends "$backends" --check-only ${test:+--data "$test"} || failed=$((failed + 1))
  done
  echo "$failed model(s) disagree"
  return $failed
}

step "2. parity: tract and ONNX Runtime CPU"
cpu_parity=ok
parity tract,ort || cpu_parity="FAILED"

step "3. CUDA"
if ! cuda_error=$("$skiff" bench benches/gpu/mlp.onnx --backends cuda --check-only 2>&1 >/dev/null); then
  reason=$(printf "%s" "$cuda_error" | tail -n 1)
  reason=${reason#skiff: error: }
  write_results "stopped before the CUDA steps: $reason (CPU parity: $cpu_parity)"
  echo "gpu-check: stopping: CUDA cannot run here: $reason" >&2
  echo "gpu-check: the CPU steps ran (parity: $cpu_parity); results in $results" >&2
  exit 3
fi
echo "CUDA runs"

step "4. parity: CUDA against tract"
gpu_parity=ok
parity tract,cuda || gpu_parity="FAILED"

step "5. throughput: tract, ONNX Runtime CPU ($(nproc) threads), CUDA"
"$skiff" fit random-forest-classifier --data tests/data/breast_cancer/train.csv --target diagnosis \
  --set n_estimators=100 -o "$work/forest.onnx" >/dev/null
for m in "random-forest-100|$work/forest.onnx|tests/data/breast_cancer/test.csv" "mlp-64-256-256-8|benches/gpu/mlp.onnx|"; do
  IFS='|' read -r name file test <<<"$m"
  bench "$name" "$file" --backends tract,ort,cuda --batch-sizes "$batches" --seconds "$seconds" \
    --intra-op-threads "$(nproc)" ${test:+--data "$test"}
done

outcome="complete (CPU parity: $cpu_parity, CUDA parity: $gpu_parity)"
write_results "$outcome"
step "done: $outcome; results in $results"
[ "$cpu_parity" = ok ] && [ "$gpu_parity" = ok ]
