#!/bin/sh
# Temporal's SQL schema on PostgreSQL (temporalio/admin-tools): create both databases if
# missing, then bring each schema up to the image's version. Idempotent.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  dir=$SCHEMA/temporal/versioned
  [ "$db" = temporal_visibility ] && dir=$SCHEMA/visibility/versioned
  tool="temporal-sql-tool --plugin postgres12 --ep $POSTGRES_SEEDS -p ${DB_PORT:-5432} -u $POSTGRES_USER --db $db"
  $tool create 2>/dev/null || echo "database $db exists"
  $tool setup-schema -v 0.0
  $tool update-schema -d "$dir"
done
echo "Temporal schema is up to date"
