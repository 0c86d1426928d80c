#!/usr/bin/env bash
# Builds LoPAProxy's images: localhost/lopaproxy:latest (the CPU proxy) and localhost/lopa-model-server:latest (the
# reference llama.cpp server); with --gpu, localhost/lopaproxy:gpu (ONNX Runtime's CUDA provider on a CUDA base).
#   docker/build.sh                 podman where it is installed, else docker
#   docker/build.sh --docker        docker, from Microsoft's .NET images (the SDK builds inside the image)
#   docker/build.sh --podman        podman on a machine without a registry: a local Debian base made with mmdebstrap
#                                   (once), the application published on this host with docker/publish.sh
# Options: --gpu (also the GPU proxy), --no-model-server, --tag TAG (default latest). Idempotent: the local base is
# made only when missing, the images are rebuilt from the layer cache. Each step is printed; any failure stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
engine="" gpu=0 model_server=1 tag=latest
while [ $# -gt 0 ]; do
  case "$1" in
    --docker) engine=docker ;;
    --podman) engine=podman ;;
    --gpu) gpu=1 ;;
    --no-model-server) model_server=0 ;;
    --tag) tag=${2:?--tag needs a value}; shift ;;
    *) echo "docker/build.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$engine" ]; then
  if command -v podman > /dev/null; then engine=podman; else engine=docker; fi
fi
command -v "$engine" > /dev/null || { echo "docker/build.sh: $engine is not installed" >&2; exit 1; }
step() { echo "==> $*"; }

local_base=localhost/lopa-base:bookworm
gpu_base=${LOPA_GPU_BASE_IMAGE:-nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04}
args=(-f docker/Dockerfile)
flavours=(proxy)
[ "$gpu" = 1 ] && flavours+=(proxy-gpu)
[ "$model_server" = 1 ] && flavours+=(model-server)

if [ "$engine" = podman ]; then
  # No registry here: the base is Debian bookworm's minimal root with what a self-contained .NET app needs.
  if ! podman image exists "$local_base"; then
    step "making the local base $local_base with mmdebstrap"
    command -v mmdebstrap > /dev/null || { echo "docker/build.sh: mmdebstrap is not installed" >&2; exit 1; }
    tar=$(mktemp --suffix=.tar)
    mmdebstrap --quiet --variant=minbase --include=ca-certificates,libicu72,libssl3,tzdata,libgomp1 \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
      bookworm "$tar"
    podman import --quiet "$tar" "$local_base" > /dev/null
    rm -f "$tar"
  fi
  # Published from a copy of the sources (.artifacts/container/source, kept for incremental builds), so that the
  # checkout's own build outputs are never rewritten under a running test or program.
  source=.artifacts/container/source
  step "copying the sources into $source"
  mkdir -p "$source"
  find "$source" -type f -not -path '*/bin/*' -not -path '*/obj/*' -delete
  tar -cf - --exclude=bin --exclude=obj src assets build docker Directory.Build.props Directory.Build.targets \
    Directory.Packages.props global.json | tar -C "$source" -xf -
  for flavour in "${flavours[@]}"; do
    step "publishing $flavour on this host into .artifacts/container/$flavour"
    "$source/docker/publish.sh" "$flavour" "$PWD/.artifacts/container/$flavour"
  done
  # docker format: OCI images have no HEALTHCHECK.
  args+=(--format docker --build-arg APP=prebuilt --build-arg "BASE_IMAGE=$local_base")
fi

step "building localhost/lopaproxy:$tag"
"$engine" build "${args[@]}" --target proxy -t "localhost/lopaproxy:$tag" .
if [ "$gpu" = 1 ]; then
  step "building localhost/lopaproxy:gpu on $gpu_base"
  "$engine" build "${args[@]}" --target proxy --build-arg PROXY_FLAVOUR=proxy-gpu \
    --build-arg "BASE_IMAGE=$gpu_base" -t localhost/lopaproxy:gpu .
fi
if [ "$model_server" = 1 ]; then
  step "building localhost/lopa-model-server:$tag"
  "$engine" build "${args[@]}" --target model-server -t "localhost/lopa-model-server:$tag" .
fi
step "done: $("$engine" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'lopaproxy|lopa-model-server' \
  | tr '\n' ' ')"
