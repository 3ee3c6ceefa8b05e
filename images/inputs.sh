# Sourced by images/build-server.sh and images/build-guest.sh: skips a build whose inputs have
# not changed since the binary in RUNTIME_DIR was built from them.
#
#   digest=$(build_inputs MANIFEST TARGET PACKAGE_ARGS...)
#   if up_to_date "$out" "$digest"; then ...; fi
#   ... build, install "$out" ...
#   stamp "$out" "$digest"
#
# The digest covers every crate the build links with its version, source and features (from
# cargo tree, build dependencies included), the sources of the path crates among them, the
# cargo profiles of the workspace manifest, wit/, the build scripts, the toolchain and the
# caller's RUSTFLAGS, TARGET_CFLAGS and SOURCE_DATE_EPOCH. It names files relative to the
# clone, so two clones of one commit share it, and a change elsewhere in the workspace (a
# training crate, a dependency only the CLI uses) leaves it as it was: neither rebuilds a
# server of fat LTO (minutes) on a machine that has one.

# build_inputs MANIFEST TARGET CARGO_TREE_ARGS... : prints the digest of a build's inputs.
build_inputs() {
  local manifest=$1 target=$2
  shift 2
  local tree crates
  tree=$(cargo tree --locked --manifest-path "$manifest" --target "$target" "$@" \
    -e normal,build --prefix none --format '{p} {f}')
  crates=$(sed -n 's/^[^ ]* [^ ]* (\(\/[^)]*\)).*$/\1/p' <<<"$tree" | LC_ALL=C sort -u |
    while read -r dir; do realpath --relative-to=. "$dir"; done)
  {
    rustc -vV
    printf 'RUSTFLAGS=%s\nTARGET_CFLAGS=%s\nSOURCE_DATE_EPOCH=%s\n' \
      "${RUSTFLAGS:-}" "${TARGET_CFLAGS:-}" "${SOURCE_DATE_EPOCH:-}"
    sed "s|$PWD/||" <<<"$tree" | LC_ALL=C sort -u
    awk '/^\[/ { profile = /^\[profile/ } profile' Cargo.toml
    # shellcheck disable=SC2086 # one crate directory per word
    find $crates rust-toolchain.toml wit images/inputs.sh images/build-server.sh \
      images/build-guest.sh scripts/setup-build.sh \
      -type f ! -path '*/target/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d ' ' -f 1
}

# up_to_date FILE DIGEST : whether FILE exists and was built from inputs of this DIGEST.
up_to_date() {
  [ -f "$1" ] && [ "$(cat "$1.inputs" 2>/dev/null)" = "$2" ]
}

# stamp FILE DIGEST : records that FILE was built from inputs of this DIGEST.
stamp() {
  printf '%s\n' "$2" >"$1.inputs.tmp"
  mv "$1.inputs.tmp" "$1.inputs"
}
