#!/usr/bin/env bash
# The PostgreSQL tests start their own throwaway server; this makes sure its programs are installed.
set -euo pipefail
if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
  exit 0
fi
if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
  exit 0
fi
echo "PostgreSQL server programs not found; installing Debian's postgresql package" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "need root to apt-get install postgresql" >&2
  exit 1
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
