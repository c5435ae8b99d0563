#!/usr/bin/env bash
# Runs once, on the first start with an empty data volume (postgres image entrypoint).
# Creates one database per KUBE service, owned by $POSTGRES_USER.
set -euo pipefail

for db in kube_registry kube_grants kube_notifications; do
    # \gexec runs the generated CREATE only when the database is missing (CREATE DATABASE has no IF NOT EXISTS).
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<-SQL
	SELECT format('CREATE DATABASE %I OWNER %I', '${db}', '${POSTGRES_USER}')
	WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '${db}')\gexec
	SQL
done
