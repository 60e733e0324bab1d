-- Least privilege on PostgreSQL: one login role per service, owning its own database and nothing else.
-- Run by a superuser (the platform's DBA, or its provisioning job), once per service, idempotent:
--   ROLE_PASSWORD="$BILLING_DATABASE_PASSWORD" \
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -v role=billing -v database=billing -f deploy/postgres/service-role.sql
-- (the password from the environment, never on a command line that `ps` shows).
-- The service connects as that role (<SERVICE>_DATABASE_URL=postgresql+asyncpg://billing:...@host/billing): its
-- migrations create its tables in its own database; it cannot connect to another service's database, create
-- databases or roles, or bypass row security. tests/test_least_privilege.py runs this file.

\getenv password ROLE_PASSWORD
\if :{?password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'ROLE_PASSWORD is not set'; END $$;
\endif

SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT
    PASSWORD :'password';

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
ALTER DATABASE :"database" OWNER TO :"role";
-- PUBLIC may connect to a new database by default: only its owner may now.
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
