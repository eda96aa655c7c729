#!/bin/sh
# Runs once, on the first start of an empty data volume (the postgres image's initdb hook).
# One login role and one database each for media-service and Keycloak, so neither connects as the
# superuser. Passwords travel as psql variables (:'name' quotes them), never spliced into SQL text.
set -e
: "${MEDIA_DB_PASSWORD:?MEDIA_DB_PASSWORD is not set}"
: "${KEYCLOAK_DB_PASSWORD:?KEYCLOAK_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=media_password="$MEDIA_DB_PASSWORD" \
    --set=keycloak_password="$KEYCLOAK_DB_PASSWORD" <<'SQL'
CREATE ROLE media LOGIN PASSWORD :'media_password';
CREATE DATABASE media OWNER media;
CREATE ROLE keycloak LOGIN PASSWORD :'keycloak_password';
CREATE DATABASE keycloak OWNER keycloak;
SQL
