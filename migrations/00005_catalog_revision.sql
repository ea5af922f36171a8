-- Catalog revision: one number that grows with every committed change to
-- catalog.cars or catalog.parts, so caches in front of the catalog (several
-- catalog instances, the gateway) can tell which state of the data an answer
-- reflects. The catalog_changed notification now carries the new number.
--
-- The number is bumped once per changing transaction, in that transaction:
-- it commits (and is notified) together with the change or not at all. The
-- row lock taken by the bump serialises concurrent catalog writers until they
-- commit, so numbers are notified in commit order.

-- +goose Up
CREATE TABLE catalog.revision (
    -- one makes this a single-row table.
    one  boolean PRIMARY KEY DEFAULT true CONSTRAINT revision_single_row CHECK (one),
    -- n is the revision of the catalog data; it only grows.
    n    bigint NOT NULL DEFAULT 1 CONSTRAINT revision_n_positive CHECK (n > 0),
    -- xact is the transaction that last bumped n: later statements of the
    -- same transaction do not bump it again.
    xact xid8
);

INSERT INTO catalog.revision (one, n) VALUES (true, 1);

-- The catalog service reads the current revision (00004's default privileges
-- would grant it too, but only for tables created by the role that ran 00004).
GRANT SELECT ON catalog.revision TO carbuild_catalog_reader;

-- +goose StatementBegin
-- notify_catalog_changed bumps catalog.revision once per transaction and
-- tells listeners (services caching the catalog) the new revision, as decimal
-- text, on channel catalog_changed. pg_notify is transactional: the signal is
-- sent only on commit. SECURITY DEFINER (with a fixed search_path) lets any
-- role allowed to write cars or parts bump the revision without being allowed
-- to write catalog.revision itself.
CREATE OR REPLACE FUNCTION catalog.notify_catalog_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rev bigint;
BEGIN
    UPDATE catalog.revision SET n = n + 1, xact = pg_current_xact_id()
    WHERE xact IS DISTINCT FROM pg_current_xact_id()
    RETURNING n INTO rev;
    IF FOUND THEN
        PERFORM pg_notify('catalog_changed', rev::text);
    ELSIF NOT EXISTS (SELECT FROM catalog.revision) THEN
        -- The row is gone (only its owner can do that): listeners must still
        -- hear of the change; an empty payload means "revision unknown".
        PERFORM pg_notify('catalog_changed', '');
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
-- The function exactly as 00001 created it.
CREATE OR REPLACE FUNCTION catalog.notify_catalog_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('catalog_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

DROP TABLE catalog.revision;
