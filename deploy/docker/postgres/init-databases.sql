-- One database per Visiopass service (each service owns its schema and runs its own Alembic migrations at
-- start-up). Mounted into /docker-entrypoint-initdb.d by docker-compose.yml: the postgres image runs it
-- once, as POSTGRES_USER, when the data volume is empty. A service added later needs its CREATE DATABASE
-- here AND, on an existing volume, run by hand (docker compose exec postgres createdb -U visiopass <name>).
-- tests/test_compose.py checks this list against the services' DATABASE_URLs.
CREATE DATABASE accounts;
CREATE DATABASE billing;
CREATE DATABASE catalogue;
CREATE DATABASE enrollment;
CREATE DATABASE notifier;
CREATE DATABASE gateway;
