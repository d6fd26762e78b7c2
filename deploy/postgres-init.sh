#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory: one role and one database per
# service, each role owning only its own database. Passwords come from the container's
# environment (deploy/compose.env), never from this file.
set -euo pipefail

for service in directory consent referral gateway; do
  password_var="${service^^}_DB_PASSWORD"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$service" -v password="${!password_var}" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
