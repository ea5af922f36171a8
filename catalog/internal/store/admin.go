package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/shared/errs"
)

// The management API's SQL. Every change runs in one transaction with its
// audit row; the statement-level triggers of 00005 bump catalog.revision
// and notify the caches in the same transaction. The catalog's role may only
// INSERT into catalog.audit, so no statement reads it back.
const (
	insertCarSQL = `-- name: insert_car
INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ($1, $2, $3, $4)`

	// The count is of parts on sale: RetireCar refuses a car that has some.
	lockCarSQL = `-- name: lock_car
SELECT id, name, first_year, last_year, version, retired_at IS NOT NULL,
       (SELECT count(*) FROM catalog.parts p WHERE p.car_id = c.id AND p.retired_at IS NULL)
FROM catalog.cars c WHERE id = $1
FOR UPDATE`

	updateCarSQL = `-- name: update_car
UPDATE catalog.cars
SET name = $2, first_year = $3, last_year = $4, version = $5,
    retired_at = CASE WHEN $6::boolean THEN coalesce(retired_at, now()) END
WHERE id = $1`

	// FOR SHARE: a car being retired (FOR UPDATE) waits for the new part's
	// transaction, and the part waits for the retirement, then sees it.
	shareCarSQL = `-- name: share_car
SELECT retired_at IS NOT NULL FROM catalog.cars WHERE id = $1 FOR SHARE`

	insertPartSQL = `-- name: insert_part
INSERT INTO catalog.parts (car_id, name, category, price_minor, currency) VALUES ($1, $2, $3, $4, $5)
RETURNING id`

	lockPartSQL = `-- name: lock_part
SELECT id, car_id, name, category, price_minor, currency, version, retired_at IS NOT NULL
FROM catalog.parts WHERE id = $1
FOR UPDATE`

	updatePartSQL = `-- name: update_part
UPDATE catalog.parts
SET name = $2, category = $3, price_minor = $4, currency = $5, version = $6,
    retired_at = CASE WHEN $7::boolean THEN coalesce(retired_at, now()) END
WHERE id = $1`

	insertAuditSQL = `-- name: insert_audit
INSERT INTO catalog.audit (actor, action, entity, entity_id, before, after) VALUES ($1, $2, $3, $4, $5, $6)`
)

// CreateCar inserts car with its audit row.
func (s *Store) CreateCar(ctx context.Context, actor string, car catalog.Car) (catalog.ManagedCar, error) {
	created := catalog.ManagedCar{Car: car, Version: 1}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertCarSQL, car.ID, car.Name, car.FirstYear, car.LastYear); err != nil {
			return err
		}
		return audit(ctx, tx, actor, catalog.ActionCreate, catalog.EntityCar, car.ID, nil, carRecord(created))
	})
	if err != nil {
		return catalog.ManagedCar{}, writeError("create car", "car "+car.ID, err)
	}
	return created, nil
}

// EditCar locks car id, lets edit change it and stores the result as action.
func (s *Store) EditCar(ctx context.Context, actor, action, id string, edit func(catalog.ManagedCar) (catalog.ManagedCar, error)) (catalog.ManagedCar, error) {
	var after catalog.ManagedCar
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var before catalog.ManagedCar
		err := tx.QueryRow(ctx, lockCarSQL, id).Scan(&before.ID, &before.Name, &before.FirstYear, &before.LastYear,
			&before.Version, &before.Retired, &before.ActiveParts)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.New(errs.NotFound, "car %q not found", id)
		}
		if err != nil {
			return err
		}
		if after, err = edit(before); err != nil {
			return err
		}
		c := after
		if _, err := tx.Exec(ctx, updateCarSQL, c.ID, c.Name, c.FirstYear, c.LastYear, c.Version, c.Retired); err != nil {
			return err
		}
		return audit(ctx, tx, actor, action, catalog.EntityCar, c.ID, carRecord(before), carRecord(c))
	})
	if err != nil {
		return catalog.ManagedCar{}, writeError(action+" car", "car "+id, err)
	}
	return after, nil
}

// CreatePart inserts part with its audit row; it gets the next id.
func (s *Store) CreatePart(ctx context.Context, actor string, part catalog.Part) (catalog.ManagedPart, error) {
	created := catalog.ManagedPart{Part: part, Version: 1}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var retired bool
		err := tx.QueryRow(ctx, shareCarSQL, part.CarID).Scan(&retired)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return errs.New(errs.NotFound, "car %q not found", part.CarID)
		case err != nil:
			return err
		case retired:
			return errs.New(errs.FailedPrecondition, "car %s is retired", part.CarID)
		}
		if err := tx.QueryRow(ctx, insertPartSQL, part.CarID, part.Name, string(part.Category), part.Price, part.Currency).Scan(&created.ID); err != nil {
			return err
		}
		return audit(ctx, tx, actor, catalog.ActionCreate, catalog.EntityPart, strconv.FormatInt(created.ID, 10), nil, partRecord(created))
	})
	if err != nil {
		return catalog.ManagedPart{}, writeError("create part", "part", err)
	}
	return created, nil
}

// EditPart locks part id, lets edit change it and stores the result as action.
func (s *Store) EditPart(ctx context.Context, actor, action string, id int64, edit func(catalog.ManagedPart) (catalog.ManagedPart, error)) (catalog.ManagedPart, error) {
	var after catalog.ManagedPart
	name := "part " + strconv.FormatInt(id, 10)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var before catalog.ManagedPart
		var category string
		err := tx.QueryRow(ctx, lockPartSQL, id).Scan(&before.ID, &before.CarID, &before.Name, &category, &before.Price,
			&before.Currency, &before.Version, &before.Retired)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.New(errs.NotFound, "part %d not found", id)
		}
		if err != nil {
			return err
		}
		before.Category = catalog.Category(category)
		if after, err = edit(before); err != nil {
			return err
		}
		p := after
		if _, err := tx.Exec(ctx, updatePartSQL, p.ID, p.Name, string(p.Category), p.Price, p.Currency, p.Version, p.Retired); err != nil {
			return err
		}
		return audit(ctx, tx, actor, action, catalog.EntityPart, strconv.FormatInt(id, 10), partRecord(before), partRecord(p))
	})
	if err != nil {
		return catalog.ManagedPart{}, writeError(action+" "+name, name, err)
	}
	return after, nil
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// carRecord and partRecord are how the audit trail keeps a car or part
// (before, after; jsonb).
func carRecord(c catalog.ManagedCar) map[string]any {
	return map[string]any{"id": c.ID, "name": c.Name, "firstYear": c.FirstYear, "lastYear": c.LastYear,
		"version": c.Version, "retired": c.Retired}
}

func partRecord(p catalog.ManagedPart) map[string]any {
	return map[string]any{"id": strconv.FormatInt(p.ID, 10), "carId": p.CarID, "name": p.Name, "category": string(p.Category),
		"priceMinor": p.Price, "currency": p.Currency, "version": p.Version, "retired": p.Retired}
}

// audit appends the change's row; before is nil (SQL NULL) for a create.
func audit(ctx context.Context, tx pgx.Tx, actor, action, entity, id string, before, after any) error {
	_, err := tx.Exec(ctx, insertAuditSQL, actor, action, entity, id, before, after)
	return err
}

// writeError returns a domain error as it is, turns the unique violation a
// valid request can still meet (another operator took the id or name) into
// an errs.Conflict and wraps anything else with op.
func writeError(op, what string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, new(*errs.Error)):
		return err
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
		if pgErr.ConstraintName == "cars_name_lower_key" {
			return errs.New(errs.Conflict, "a car with that name already exists")
		}
		return errs.New(errs.Conflict, "%s already exists", what)
	}
	return fmt.Errorf("%s: %w", op, err)
}
