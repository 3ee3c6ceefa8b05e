#!/usr/bin/env bash
# Builds the server that goes into skiff's images and installs it where `skiff pack` finds it,
# for each PLATFORM given (default linux/amd64):
#
#   images/build-server.sh RUNTIME_DIR [linux/amd64] [linux/arm64]
#       ->  RUNTIME_DIR/linux-amd64/skiff-server, RUNTIME_DIR/linux-arm64/skiff-server
#           and beside each, skiff-server.crates.tsv (the crates in it, for the image's SBOM)
#
# The binary is crates/server built for <arch>-unknown-linux-musl with the `server` profile
# (fat LTO, one codegen unit, stripped, panic=abort): fully static, so it runs in a scratch
# image with nothing else in it. A static binary cannot load ONNX Runtime, so it is built
# without the `ort` feature and serves on tract (images/gpu/ builds the glibc server instead).
# linux/arm64 is cross-built with zig as C compiler and linker (cargo-zigbuild; see
# scripts/setup-build.sh), with the `component` feature: the arm64 server is also the host of
# edge devices, and serves model components from their precompiled code.
#
# Paths of the build machine (the clone, cargo's registry, the target directory) are remapped,
# and C's build date is SOURCE_DATE_EPOCH (default 0), so the binary, and the image layer made
# from it, do not depend on where or when skiff was built.
set -euo pipefail
cd "$(dirname "$0")/.."

# Writes the crates linked into the server built for triple $1 (with the cargo features $3) to
# file $2, one per line, sorted, tab separated: name, version, licence (as Cargo.toml declares
# it), repository, source (crates.io, path or other) and the sha256 of the .crate from
# Cargo.lock (crates.io only). Proc-macros, and what only they use, run at compile time and are left out. Nothing in
# it names the build machine, so it is the same wherever skiff is built.
write_crates() {
  {
    printf '# name\tversion\tlicense\trepository\tsource\tchecksum\n'
    # shellcheck disable=SC2086 # the features are words
    cargo tree --locked -p skiff-server --no-default-features $3 --target "$1" -e normal \
      --prefix depth --no-dedupe --format $'{p}\t{l}\t{r}' |
      awk -F'\t' '
        FNR == NR {  # Cargo.lock: the source and checksum of each name and version
          if ($0 == "[[package]]") { name = ""; version = "" }
          else if (sub(/^name = "/, "")) { sub(/"$/, ""); name = $0 }
          else if (sub(/^version = "/, "")) { sub(/"$/, ""); version = $0 }
          else if (sub(/^source = "/, "")) { sub(/"$/, ""); source[name " " version] = $0 }
          else if (sub(/^checksum = "/, "")) { sub(/"$/, ""); checksum[name " " version] = $0 }
          next
        }
        {  # cargo tree: DEPTH NAME vVERSION [(PATH)] [(proc-macro)] \t LICENCE \t REPOSITORY
          match($1, /^[0-9]+/)
          depth = substr($1, 1, RLENGTH) + 0
          if (skipping && depth > skip_depth) next
          skipping = 0
          if ($1 ~ /\(proc-macro\)/) { skipping = 1; skip_depth = depth; next }
          split(substr($1, RLENGTH + 1), words, " ")
          key = words[1] " " substr(words[2], 2)
          if (!(key in source)) from = "path"
          else if (source[key] ~ /^(registry\+https:\/\/github\.com\/rust-lang\/crates\.io-index|sparse\+https:\/\/index\.crates\.io\/)$/) from = "crates.io"
          else from = "other"
          print words[1] "\t" substr(words[2], 2) "\t" $2 "\t" $3 "\t" from "\t" checksum[key]
        }' Cargo.lock - | LC_ALL=C sort -u
  } >"$2.tmp"
  mv "$2.tmp" "$2"
}
runtime_dir=${1:?usage: images/build-server.sh RUNTIME_DIR [linux/amd64] [linux/arm64]}
shift
platforms=("${@:-linux/amd64}")
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
registry_src=${CARGO_HOME:-$HOME/.cargo}/registry/src

scripts/setup-build.sh "${platforms[@]}"
. images/inputs.sh
# Each platform's inputs, taken before the flags below name this clone's path.
declare -A triples=([linux/amd64]=x86_64-unknown-linux-musl [linux/arm64]=aarch64-unknown-linux-musl)
declare -A features=([linux/amd64]="" [linux/arm64]="--features component")
declare -A inputs
for platform in "${platforms[@]}"; do
  [ -n "${triples[$platform]:-}" ] ||
    { echo "build-server.sh: unknown platform $platform (linux/amd64 or linux/arm64)" >&2; exit 2; }
  # shellcheck disable=SC2086 # the features are words
  inputs[$platform]=$(build_inputs Cargo.toml "${triples[$platform]}" -p skiff-server --no-default-features ${features[$platform]})
done
RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$PWD=/skiff --remap-path-prefix=$registry_src=/cargo --remap-path-prefix=$target_dir=/target"
TARGET_CFLAGS="${TARGET_CFLAGS:-} -ffile-prefix-map=$registry_src=/cargo"
# C's __DATE__ and __TIME__ (mimalloc records its build time) from this, not the clock
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
export RUSTFLAGS TARGET_CFLAGS SOURCE_DATE_EPOCH

for platform in "${platforms[@]}"; do
  triple=${triples[$platform]}
  build=(cargo build)
  [ "$platform" = linux/amd64 ] || build=("$cache/zig/bin/cargo-zigbuild" zigbuild)
  server=$runtime_dir/${platform/\//-}/skiff-server
  if up_to_date "$server" "${inputs[$platform]}"; then
    echo "build-server.sh: $server is up to date (its inputs are unchanged)"
    continue
  fi
  # shellcheck disable=SC2086 # the features are words
  PATH=$cache/zig/bin:$PATH "${build[@]}" --locked --profile server --target "$triple" \
    -p skiff-server --no-default-features ${features[$platform]}
  install -D -m 0755 "$target_dir/$triple/server/skiff-server" "$server"
  write_crates "$triple" "$server.crates.tsv" "${features[$platform]}"
  stamp "$server" "${inputs[$platform]}"
done
