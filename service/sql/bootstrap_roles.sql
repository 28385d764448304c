-- The service's two database roles (CONTRACTS.md) and their rights on one database. Idempotent:
-- re-running it changes nothing but the passwords (which makes it the rotation step too).
--
--   <db>_migrator  owns the schema; `python -m app.migrate` connects as it (MIGRATION_DATABASE_URL)
--   <db>_app       DML only (SELECT/INSERT/UPDATE/DELETE); the API and the worker (DATABASE_URL).
--                  No CREATE on the schema, owns nothing, so it cannot CREATE, ALTER, DROP or
--                  TRUNCATE (service/tests/integration/test_database_roles.py proves it).
--
-- Run as a superuser or the cloud admin user (RDS master), connected to the database itself:
--   psql "postgresql://<admin>@<host>/<db>" -v db=<db> \
--        -v app_password="$APP_PASSWORD" -v migrator_password="$MIGRATOR_PASSWORD" \
--        -f service/sql/bootstrap_roles.sql
-- Leave out the *_password variables to keep the current passwords (or for IAM/cert auth).
\set ON_ERROR_STOP on
\if :{?db}
\else
  DO $$ BEGIN RAISE EXCEPTION 'bootstrap_roles.sql: pass -v db=<database name>'; END $$;
\endif
\set app_role :db '_app'
\set migrator_role :db '_migrator'

SELECT format('CREATE ROLE %I LOGIN', :'migrator_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'migrator_role') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"migrator_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
\if :{?migrator_password}
ALTER ROLE :"migrator_role" WITH PASSWORD :'migrator_password';
\endif
\if :{?app_password}
ALTER ROLE :"app_role" WITH PASSWORD :'app_password';
\endif

-- A non-superuser admin (RDS) must be a member to set the migrator's default privileges.
SELECT format('GRANT %I TO %I', :'migrator_role', current_user)
 WHERE NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \gexec

REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"migrator_role", :"app_role";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"migrator_role";
GRANT USAGE ON SCHEMA public TO :"app_role";

-- Tables made by an earlier setup (migrations run as the app's role) move to the migrator.
SELECT format('ALTER TABLE public.%I OWNER TO %I', tablename, :'migrator_role')
  FROM pg_tables WHERE schemaname = 'public' AND tableowner <> :'migrator_role' \gexec

-- What the migrator creates from now on, the app may read and write, never alter.
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator_role" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator_role" IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
