#!/usr/bin/env bash
# Runs once, on the first start with an empty data volume (postgres image entrypoint).
# Creates one database per KUBE service, each owned by a role of its own that can reach only
# that database (least privilege: a service's credentials open no other service's data).
set -euo pipefail

for service in registry grants notifications; do
    db="kube_${service}"
    var="${service^^}_DB_PASSWORD"
    password="${!var:?set ${var}}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="$db" -v password="$password" <<-'SQL'
	SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
	WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role')\gexec
	SELECT format('CREATE DATABASE %I OWNER %I', :'role', :'role')
	WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'role')\gexec
	SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'role')\gexec
	SQL
done
