#!/bin/sh
# Create (first start) or migrate (later starts) Temporal's two databases on PostgreSQL.
set -eu
base=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  dir=$base/temporal/versioned
  [ "$db" = temporal_visibility ] && dir=$base/visibility/versioned
  temporal-sql-tool --db "$db" create-database || true
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$dir"
done
