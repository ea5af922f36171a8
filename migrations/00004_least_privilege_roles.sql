-- Least-privilege group roles. Each service should log in as its own role,
-- a member of exactly one of these (see docs/reliability.md):
--   carbuild_catalog_reader: reads schema catalog (catalog service); nothing else.
--   carbuild_orders_writer:  reads and inserts orders (pricing service); no
--                            UPDATE or DELETE, nothing in catalog.
-- Both are NOLOGIN groups: passwords belong to the login roles an operator
-- creates (CREATE ROLE catalog_svc LOGIN PASSWORD ... IN ROLE carbuild_catalog_reader).
-- Roles are cluster-wide while migrations run per database: Up tolerates
-- roles that another database (or a concurrent migration) already created,
-- and Down only revokes what this database granted, leaving the roles to the
-- other databases that may use them.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    CREATE ROLE carbuild_catalog_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- exists already (another database of the cluster)
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
DO $$
BEGIN
    CREATE ROLE carbuild_orders_writer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- +goose StatementEnd

GRANT USAGE ON SCHEMA catalog TO carbuild_catalog_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA catalog TO carbuild_catalog_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA catalog GRANT SELECT ON TABLES TO carbuild_catalog_reader;

GRANT USAGE ON SCHEMA orders TO carbuild_orders_writer;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA orders TO carbuild_orders_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA orders GRANT SELECT, INSERT ON TABLES TO carbuild_orders_writer;

-- +goose Down
ALTER DEFAULT PRIVILEGES IN SCHEMA orders REVOKE SELECT, INSERT ON TABLES FROM carbuild_orders_writer;
REVOKE ALL ON ALL TABLES IN SCHEMA orders FROM carbuild_orders_writer;
REVOKE USAGE ON SCHEMA orders FROM carbuild_orders_writer;

ALTER DEFAULT PRIVILEGES IN SCHEMA catalog REVOKE SELECT ON TABLES FROM carbuild_catalog_reader;
REVOKE ALL ON ALL TABLES IN SCHEMA catalog FROM carbuild_catalog_reader;
REVOKE USAGE ON SCHEMA catalog FROM carbuild_catalog_reader;
-- The roles stay: they are cluster-wide and other databases may grant them.
