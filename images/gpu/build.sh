#!/usr/bin/env bash
# Builds a GPU model image without Docker: skiff's server built for glibc with ONNX Runtime,
# ONNX Runtime's CUDA provider and the model, layered onto a CUDA base image.
#
#   images/gpu/build.sh MODEL.onnx ORT_DIR BASE DEST [NAME]
#
#   ORT_DIR  the onnxruntime/capi folder of the onnxruntime-gpu wheel (libonnxruntime.so.1.*,
#            libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so)
#   BASE     a base image with glibc and the CUDA libraries that provider loads (CUDA runtime,
#            cuBLAS, cuFFT, cuRAND, cuDNN 9), as skopeo names it, e.g.
#            docker://nvcr.io/nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
#   DEST     where the image goes, as skopeo names it: oci:DIR:TAG or docker://HOST/REPO:TAG
#   NAME     the model's name in /v2/models/NAME (default: MODEL's file stem)
#
# Needs skopeo and umoci (Debian packages), and cargo unless SKIFF_SERVER names a skiff-server
# already built for glibc with the default features (cargo build --profile server -p skiff-server). Layers, on top of BASE's:
#   1. /usr/local/bin/skiff-server and /opt/onnxruntime/lib (the same for every model)
#   2. /model/model.onnx
# The server starts with SKIFF_BACKEND=cuda, so a pod without a GPU fails at start with a
# one-line error instead of serving slowly on the CPU; set SKIFF_BACKEND=auto to allow that.
set -euo pipefail
usage="usage: images/gpu/build.sh MODEL.onnx ORT_DIR BASE DEST [NAME]"
model=$(realpath "${1:?$usage}")
ort_dir=$(realpath "${2:?$usage}")
base=${3:?$usage}
dest=${4:?$usage}
name=${5:-$(basename "$model" .onnx)}
cd "$(dirname "$0")/../.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

ort_lib=$(cd "$ort_dir" && ls libonnxruntime.so.1.* 2>/dev/null | sort | tail -n 1 || true)
for f in "$ort_lib" libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
  [ -n "$f" ] && [ -f "$ort_dir/$f" ] || {
    echo "build.sh: $ort_dir lacks ${f:-libonnxruntime.so.1.*}: pass the onnxruntime/capi folder of the onnxruntime-gpu wheel" >&2
    exit 2
  }
done

server=${SKIFF_SERVER:-}
if [ -z "$server" ]; then
  cargo build --locked --profile server -p skiff-server
  server=$target_dir/server/skiff-server
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/server/usr/local/bin" "$work/server/opt/onnxruntime/lib" "$work/model/model"
install -m 0755 "$server" "$work/server/usr/local/bin/skiff-server"
for f in "$ort_lib" libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
  install -m 0644 "$ort_dir/$f" "$work/server/opt/onnxruntime/lib/$f"
done
install -m 0644 "$model" "$work/model/model/model.onnx"

image="$work/image:skiff"
skopeo copy --quiet "$base" "oci:$image"
umoci insert --image "$image" --history.created_by "skiff-server + ONNX Runtime GPU" \
  "$work/server" /
umoci insert --image "$image" --history.created_by "model $name" "$work/model" /
umoci config --image "$image" \
  --config.entrypoint /usr/local/bin/skiff-server --config.entrypoint --name \
  --config.entrypoint "$name" --config.entrypoint /model/model.onnx \
  --clear config.cmd --clear config.entrypoint \
  --config.env PORT=8080 --config.env SKIFF_BACKEND=cuda \
  --config.env "ORT_DYLIB_PATH=/opt/onnxruntime/lib/$ort_lib" \
  --config.user 65532:65532 --config.exposedports 8080/tcp \
  --config.label "dev.skiff.model.name=$name"
skopeo copy --quiet "oci:$image" "$dest"
echo "wrote $dest (model $name, serving on CUDA)"
