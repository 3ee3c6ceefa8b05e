#!/usr/bin/env bash
# Installs everything skiff's tests need, then runs them all: formatting, lints, unit tests and
# the end-to-end tests against a real registry, runc, qemu-user (the arm64 server), and ONNX
# Runtime.
#
#   scripts/test.sh
#
# SKIFF_CACHE (default ~/.cache/skiff) keeps the Python environment between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
sudo=; [ "$(id -u)" = 0 ] || sudo=sudo

step() { printf '\n==> %s (%s)\n' "$*" "$(date +%T)"; }

step "system packages"
packages=(docker-registry skopeo umoci runc apache2-utils musl-tools python3-venv curl bsdutils qemu-user-static)
missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
scripts/setup-build.sh linux/amd64 linux/arm64
rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt

step "python environment (onnxruntime, tritonclient, scikit-learn, kubernetes-validate)"
venv=$cache/venv
# Rebuilt whenever tests/requirements.txt changes: the stamp holds the file it was built from.
if ! cmp -s tests/requirements.txt "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt "$venv/requirements.txt"
fi
export SKIFF_TEST_PYTHON=$venv/bin/python
# The ONNX Runtime backend's tests load the library the onnxruntime wheel ships.
ORT_DYLIB_PATH=$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)
export ORT_DYLIB_PATH

step "static servers for images (linux/amd64, and linux/arm64 cross-built)"
export SKIFF_RUNTIME_DIR=$target_dir/runtime
images/build-server.sh "$SKIFF_RUNTIME_DIR" linux/amd64 linux/arm64

step "cargo fmt"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
# Without ONNX Runtime (the static server's build), the runtime and the server still lint clean.
cargo clippy --locked -p skiff-runtime -p skiff-server --no-default-features -- -D warnings
step "cargo test"
cargo test --locked --workspace --no-fail-fast
step "done"
