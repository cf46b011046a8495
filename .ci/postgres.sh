#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL server for the tests that need one; prints its URL.
# Used by .ci/run; safe to run again (an existing cluster and role are reused).
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
  pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -q -h localhost && break
  sleep 1
done
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='releaf'\" | grep -q 1 || \
  psql -q -c \"CREATE ROLE releaf LOGIN SUPERUSER PASSWORD 'releaf'\"" >&2
echo "postgresql+psycopg://releaf:releaf@localhost:5432/postgres"
