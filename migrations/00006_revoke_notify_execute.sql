-- catalog.notify_catalog_changed is SECURITY DEFINER: it runs with its
-- owner's rights and bumps catalog.revision. Functions are executable by
-- PUBLIC by default, so any role that can create a table (in any schema) could
-- attach it as a trigger and bump the catalog revision at will, emptying every
-- cache in front of the catalog. Triggers on catalog.cars and catalog.parts
-- keep working: PostgreSQL checks EXECUTE when a trigger is created, not when
-- it fires.

-- +goose Up
REVOKE EXECUTE ON FUNCTION catalog.notify_catalog_changed() FROM PUBLIC;

-- +goose Down
GRANT EXECUTE ON FUNCTION catalog.notify_catalog_changed() TO PUBLIC;
