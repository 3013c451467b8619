#!/bin/sh
# casework's event store lives beside Temporal's databases, in a database of its own. Its password
# comes from the environment (CASEWORK_DB_PASSWORD, from .env), never from a file in the repository;
# psql quotes it (:'pw'), so any character is safe. Runs once, on the first start of the volume.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v pw="$CASEWORK_DB_PASSWORD" <<'SQL'
CREATE USER casework WITH PASSWORD :'pw';
CREATE DATABASE casework OWNER casework;
SQL
