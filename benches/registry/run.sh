#!/usr/bin/env bash
# Push and pull through a local docker-registry: time and bytes of a first push, a re-push of
# the same image, a new model version's push, a push to another repository (mounts) and a
# pull, plus the iris image's compressed size. Prints a Markdown table.
#
#   benches/registry/run.sh            # builds skiff (release) and the image's server first
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --locked -q
export SKIFF_RUNTIME_DIR=${SKIFF_RUNTIME_DIR:-$target_dir/runtime}
[ -x "$SKIFF_RUNTIME_DIR/linux-amd64/skiff-server" ] || images/build-server.sh "$SKIFF_RUNTIME_DIR"
skiff=$target_dir/release/skiff
work=$(mktemp -d)
export XDG_CACHE_HOME=$work/cache
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$work/storage" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

"$skiff" fit logistic-regression --data examples/iris/train.csv --target species -o "$work/v1.onnx" >/dev/null
"$skiff" fit logistic-regression --data examples/iris/train.csv --target species --set C=0.1 -o "$work/v2.onnx" >/dev/null
host=127.0.0.1:$port
echo "| step | seconds | bytes uploaded | blobs skipped | blobs mounted |"
echo "| --- | ---: | ---: | ---: | ---: |"
step() {
  local name=$1; shift
  local start end out
  start=$(date +%s.%N)
  out=$("$@")
  end=$(date +%s.%N)
  python3 - "$name" "$start" "$end" "$out" <<'PY'
import json, sys
name, start, end, out = sys.argv[1:]
r = json.loads(out) if out.startswith("{") else {}
cell = lambda k: str(r.get(k, "-"))
print(f"| {name} | {float(end) - float(start):.2f} | {cell('bytes_uploaded')} | {cell('blobs_skipped')} | {cell('blobs_mounted')} |")
PY
}
step "first push (pack to the registry)" "$skiff" pack "$work/v1.onnx" --name iris -o "docker://$host/team/iris:v1" --insecure --json
step "re-push of the same image" "$skiff" pack "$work/v1.onnx" --name iris -o "docker://$host/team/iris:v1" --insecure --json
step "new model version, same repository" "$skiff" pack "$work/v2.onnx" --name iris -o "docker://$host/team/iris:v2" --insecure --json
step "new version to another repository" "$skiff" pack "$work/v2.onnx" --name iris -o "docker://$host/other/iris:v1" --insecure --json
step "pull (every blob checked)" "$skiff" pull "docker://$host/team/iris:v2" -o "$work/pulled" --insecure
size=$("$skiff" inspect "docker://$host/team/iris:v2" --insecure --json | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
echo
echo "iris image, compressed layers: $size bytes"
