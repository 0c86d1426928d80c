#!/usr/bin/env bash
# A PostgreSQL 15 image for the Kubernetes test (no registry here): Debian bookworm's minimal root with postgresql-15
# made by mmdebstrap, imported once as localhost/lopa-postgres-test:15. It starts an empty cluster in /tmp that trusts
# the pod network (a test database, never a deployment's).
set -euo pipefail
image=localhost/lopa-postgres-test:15
podman image exists "$image" && exit 0
tar=$(mktemp --suffix=.tar)
trap 'rm -f "$tar"' EXIT
mmdebstrap --quiet --variant=minbase --include=postgresql-15 \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' bookworm "$tar"
start='B=/usr/lib/postgresql/15/bin; $B/initdb -D /tmp/pg -A trust -U lopa > /dev/null'
start="$start"' && echo "host all all 0.0.0.0/0 trust" >> /tmp/pg/pg_hba.conf'
start="$start"' && exec $B/postgres -D /tmp/pg -c listen_addresses=* -k /tmp'
podman import --quiet --change 'USER postgres' --change "CMD [\"/bin/sh\", \"-c\", \"${start//\"/\\\"}\"]" \
  "$tar" "$image" > /dev/null
