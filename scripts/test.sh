#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian machine, builds, runs
# every test, and ends with one line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

# --- system packages the tests use (real PyTorch and ONNX for interop and reference maths, a browser) ---
need=()
dpkg -s python3-torch >/dev/null 2>&1 || need+=(python3-torch)
dpkg -s yamllint >/dev/null 2>&1 || need+=(yamllint)
dpkg -s python3-onnx >/dev/null 2>&1 || need+=(python3-onnx)
dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)   # the web console's browser test (playwright-core drives it)
# The container tests: podman builds and runs the images, mmdebstrap makes their local base (no registry here);
# installed with their recommended packages (netavark and aardvark-dns give compose services their names).
containers=()
for p in podman buildah mmdebstrap podman-compose runc; do dpkg -s "$p" >/dev/null 2>&1 || containers+=("$p"); done
if [ $((${#need[@]} + ${#containers[@]})) -gt 0 ]; then
  echo "installing: ${need[*]} ${containers[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  if [ ${#containers[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${containers[@]}" >/dev/null
  fi
fi
# podman as root on this kind of machine: runc (crun 1.8 refuses its hybrid cgroups) and ulimits within the hard
# limits it allows. Written only where no containers.conf exists (an operator's own is left alone).
if [ "$(id -u)" -eq 0 ] && [ ! -f /etc/containers/containers.conf ]; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n\n[engine]\nruntime = "runc"\n' \
    > /etc/containers/containers.conf
fi
export LOPA_PYTHON="${LOPA_PYTHON:-/usr/bin/python3}"
"$LOPA_PYTHON" -c "import torch, onnx" || { echo "python3-torch / python3-onnx are not importable by $LOPA_PYTHON"; exit 1; }

# --- Node.js peers the tests compare against (pinned in tests/node/package-lock.json) ---
command -v node >/dev/null || { echo "node is required (Debian: apt-get install nodejs npm)"; exit 1; }
if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  touch tests/node/node_modules
fi

# --- ../shared (models, data) beside the checkout, unless LOPA_SHARED says otherwise ---
export LOPA_SHARED="${LOPA_SHARED:-$(cd .. && pwd)/shared}"
[ -d "$LOPA_SHARED/models" ] || { echo "shared files not found at $LOPA_SHARED (set LOPA_SHARED)"; exit 1; }

# --- a private PostgreSQL (own data directory and port on 127.0.0.1) for the store tests, stopped on exit ---
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$pgbin" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
pgdata=$(mktemp -d /tmp/lopa-pg.XXXXXX); pgport=${LOPA_TEST_PG_PORT:-55432}
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$pgdata"
as_pg "$pgbin/initdb" -D "$pgdata" -A trust -U lopa >/dev/null
as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/log" -o "-p $pgport -k $pgdata -c listen_addresses=127.0.0.1" -w start >/dev/null
trap 'as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1; rm -rf "$pgdata"' EXIT
export LOPA_TEST_PG="Host=127.0.0.1;Port=$pgport;Username=lopa;Database=postgres"

# --- build and test ---
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
results="$(pwd)/.artifacts/test-results"
rm -rf "$results"; mkdir -p "$results"
# Style is enforced, not remembered: formatting as .editorconfig says, and every analyzer warning an error.
style_failed=0
if ! dotnet format whitespace --folder --verify-no-changes -v quiet; then
  echo "formatting differs from .editorconfig: run 'dotnet format whitespace --folder'"; style_failed=1
fi
set +e
if dotnet build LoPAProxy.sln -c Release -nologo -v quiet -p:TreatWarningsAsErrors=true; then
  dotnet test LoPAProxy.sln -c Release --no-build -nologo --logger "trx" --results-directory "$results" "$@"
  status=$?
else
  echo "the build failed (warnings are errors here): no tests ran"; status=1
fi
set -e

# --- one summary line from the TRX files (dotnet's own summary is not what CI reads) ---
passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters"); e=$(sed -n 's/.* executed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${t:-0} - ${e:-0}))
done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; echo "dotnet test exited $status without a failing test (build or host error)"; fi
if [ $((passed + failed)) -eq 0 ]; then echo "no tests ran"; failed=1; fi
failed=$((failed + style_failed))
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
