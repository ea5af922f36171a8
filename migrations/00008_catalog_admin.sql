-- Catalog management by operators (issue #14): soft delete, per-record
-- versions and an append-only audit trail.
--   retired_at: set when an operator retires a car or part; the read side
--     hides retired rows (they stay, so past orders and the audit still
--     make sense, and ids are never reused).
--   version: grows by one with every change through the management API;
--     a change may name the version it was based on (optimistic concurrency).
--   catalog.audit: one row per change, written in the changing transaction:
--     who (the token subject), when, what, and the record before and after.
--
-- Privileges: the catalog service's role (carbuild_catalog_reader, the name
-- deployments already use) may now insert and update cars and parts, column
-- by column (never an id, a part's car, updated_at or a delete), and only
-- insert audit rows: it can neither read, change nor delete the trail.

-- +goose Up
ALTER TABLE catalog.cars
    ADD COLUMN version    bigint NOT NULL DEFAULT 1 CONSTRAINT cars_version_positive CHECK (version > 0),
    ADD COLUMN retired_at timestamptz;
ALTER TABLE catalog.parts
    ADD COLUMN version    bigint NOT NULL DEFAULT 1 CONSTRAINT parts_version_positive CHECK (version > 0),
    ADD COLUMN retired_at timestamptz;

CREATE TABLE catalog.audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- actor is the verified token subject of the operator.
    actor       text NOT NULL CONSTRAINT audit_actor_not_blank CHECK (btrim(actor) <> ''),
    at          timestamptz NOT NULL DEFAULT now(),
    action      text NOT NULL CONSTRAINT audit_action_known CHECK (action IN ('create', 'update', 'retire')),
    entity      text NOT NULL CONSTRAINT audit_entity_known CHECK (entity IN ('car', 'part')),
    entity_id   text NOT NULL,
    -- before is NULL for a create; after is the record as committed.
    before      jsonb,
    after       jsonb NOT NULL,
    CONSTRAINT audit_before_unless_create CHECK ((action = 'create') = (before IS NULL))
);

CREATE INDEX audit_entity_idx ON catalog.audit (entity, entity_id, at);

-- 00004's default privileges would give SELECT on the new table: the trail
-- is write-only for the service.
REVOKE ALL ON catalog.audit FROM carbuild_catalog_reader;
GRANT INSERT (actor, action, entity, entity_id, before, after) ON catalog.audit TO carbuild_catalog_reader;
GRANT INSERT (id, name, first_year, last_year) ON catalog.cars TO carbuild_catalog_reader;
GRANT UPDATE (name, first_year, last_year, version, retired_at) ON catalog.cars TO carbuild_catalog_reader;
GRANT INSERT (car_id, name, category, price_minor, currency) ON catalog.parts TO carbuild_catalog_reader;
GRANT UPDATE (name, category, price_minor, currency, version, retired_at) ON catalog.parts TO carbuild_catalog_reader;

-- +goose Down
-- +goose StatementBegin
-- Without retired_at a retired part would be on sale again: refuse.
DO $$
BEGIN
    IF EXISTS (SELECT FROM catalog.parts WHERE retired_at IS NOT NULL)
       OR EXISTS (SELECT FROM catalog.cars WHERE retired_at IS NOT NULL) THEN
        RAISE EXCEPTION 'catalog has retired cars or parts: delete them before migrating down';
    END IF;
END
$$;
-- +goose StatementEnd
REVOKE UPDATE (name, category, price_minor, currency, version, retired_at) ON catalog.parts FROM carbuild_catalog_reader;
REVOKE INSERT (car_id, name, category, price_minor, currency) ON catalog.parts FROM carbuild_catalog_reader;
REVOKE UPDATE (name, first_year, last_year, version, retired_at) ON catalog.cars FROM carbuild_catalog_reader;
REVOKE INSERT (id, name, first_year, last_year) ON catalog.cars FROM carbuild_catalog_reader;
DROP TABLE catalog.audit;
ALTER TABLE catalog.parts DROP COLUMN retired_at, DROP COLUMN version;
ALTER TABLE catalog.cars DROP COLUMN retired_at, DROP COLUMN version;
