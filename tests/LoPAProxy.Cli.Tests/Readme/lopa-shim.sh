#!/usr/bin/env bash
# ./lopa for the README run: the lopa built beside the tests (LOPA_DLL). A command that starts a server in the
# foreground (up without --detach, proxy, serve-model) runs until it prints its ready line, then gets SIGTERM and
# must exit 0 — so a README line that starts a server is checked to start, serve and stop.
set -uo pipefail
server=""
case "${1:-}" in
  up) [[ " $* " == *" --detach "* ]] || server="Ctrl-C or SIGTERM stops everything" ;;
  proxy) server="proxy listening on" ;;
  serve-model) server="^serving " ;;
esac
if [ -z "$server" ]; then exec dotnet "$LOPA_DLL" "$@"; fi
log="$(mktemp)"
dotnet "$LOPA_DLL" "$@" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do
  if grep -qE "$server" "$log"; then
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    cat "$log"
    exit "$rc"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    rc=$?
    cat "$log"
    echo "lopa $1 exited ($rc) before it was ready" >&2
    exit 1
  fi
  sleep 0.1
done
kill -9 "$pid"
cat "$log"
echo "lopa $1 was not ready in 120 s" >&2
exit 124
