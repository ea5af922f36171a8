// Package store reads and writes the catalog in PostgreSQL (schema catalog).
// Retired cars and parts are invisible to the reads.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/shared/database"
	"github.com/carbuild/carbuild/shared/errs"
)

const (
	listCarsSQL = `-- name: list_cars
SELECT id, name, first_year, last_year FROM catalog.cars WHERE retired_at IS NULL ORDER BY name, id`

	findCarSQL = `-- name: find_car
SELECT id, name, first_year, last_year FROM catalog.cars
WHERE (id = lower($1) OR lower(name) = lower($1)) AND retired_at IS NULL
ORDER BY id = lower($1) DESC
LIMIT 1`

	listPartsSQL = `-- name: list_parts
SELECT id, car_id, name, category, price_minor, currency FROM catalog.parts
WHERE car_id = $1 AND id > $2 AND retired_at IS NULL
ORDER BY id
LIMIT $3`

	getPartsSQL = `-- name: get_parts
SELECT id, car_id, name, category, price_minor, currency FROM catalog.parts
WHERE id = ANY($1) AND retired_at IS NULL`
)

// partsPrealloc bounds the parts a read makes room for before the rows
// come: a large limit (a whole car read in batches of 1,000) must not take
// 1,000 parts' memory for a car of 100.
const partsPrealloc = 128

// Store is the PostgreSQL catalog store.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// ListCars returns every car by name.
func (s *Store) ListCars(ctx context.Context) ([]catalog.Car, error) {
	rows, err := s.pool.Query(ctx, listCarsSQL)
	if err != nil {
		return nil, database.Classify(fmt.Errorf("list cars: %w", err))
	}
	cars, err := pgx.CollectRows(rows, scanCar)
	if err != nil {
		return nil, database.Classify(fmt.Errorf("list cars: %w", err))
	}
	return cars, nil
}

// FindCar finds a car by id or name, case-insensitively.
func (s *Store) FindCar(ctx context.Context, key string) (catalog.Car, error) {
	rows, err := s.pool.Query(ctx, findCarSQL, key)
	if err != nil {
		return catalog.Car{}, database.Classify(fmt.Errorf("find car: %w", err))
	}
	car, err := pgx.CollectExactlyOneRow(rows, scanCar)
	if errors.Is(err, pgx.ErrNoRows) {
		return catalog.Car{}, errs.New(errs.NotFound, "car %q not found", key)
	}
	if err != nil {
		return catalog.Car{}, database.Classify(fmt.Errorf("find car: %w", err))
	}
	return car, nil
}

// ListParts returns up to limit parts of a car after afterID, by id.
func (s *Store) ListParts(ctx context.Context, carID string, afterID int64, limit int) ([]catalog.Part, error) {
	rows, err := s.pool.Query(ctx, listPartsSQL, carID, afterID, limit)
	if err != nil {
		return nil, database.Classify(fmt.Errorf("list parts: %w", err))
	}
	// Every row's car_id is carID (the query's condition): its string is
	// shared rather than copied per row. The slice is made for the rows
	// asked, up to a car's usual size, not grown from one row by doubling
	// (a page of 21 parts: one allocation of 1.7 kB instead of six, 5 kB).
	parts, err := pgx.AppendRows(make([]catalog.Part, 0, min(limit, partsPrealloc)), rows, newPartScanner(carID).scan)
	if err != nil {
		return nil, database.Classify(fmt.Errorf("list parts: %w", err))
	}
	return parts, nil
}

// GetParts returns the parts among ids that exist.
func (s *Store) GetParts(ctx context.Context, ids []int64) ([]catalog.Part, error) {
	rows, err := s.pool.Query(ctx, getPartsSQL, ids)
	if err != nil {
		return nil, database.Classify(fmt.Errorf("get parts: %w", err))
	}
	parts, err := pgx.AppendRows(make([]catalog.Part, 0, min(len(ids), partsPrealloc)), rows, newPartScanner("").scan)
	if err != nil {
		return nil, database.Classify(fmt.Errorf("get parts: %w", err))
	}
	return parts, nil
}

func scanCar(row pgx.CollectableRow) (catalog.Car, error) {
	var c catalog.Car
	err := row.Scan(&c.ID, &c.Name, &c.FirstYear, &c.LastYear)
	return c, err
}

// partScanner scans the rows of one query into parts. A page of parts is
// the catalog's hottest read; of a row's five strings, three (car,
// category, currency) take their values from a few known ones, so they are
// interned rather than allocated per row: only the name is a new string.
// The scanner is made once per query, so that the scan's destinations are
// pointers into it and handing them to pgx allocates nothing per row.
type partScanner struct {
	p                  catalog.Part
	category           string
	car, cat, currency interned
	dest               []any
}

// newPartScanner returns a scanner for parts most likely of car carID.
func newPartScanner(carID string) *partScanner {
	s := &partScanner{}
	s.car = interned{dst: &s.p.CarID, one: carID}
	s.cat = interned{dst: &s.category, set: categories}
	s.currency = interned{dst: &s.p.Currency, one: catalog.Currency}
	s.dest = []any{&s.p.ID, &s.car, &s.p.Name, &s.cat, &s.p.Price, &s.currency}
	return s
}

func (s *partScanner) scan(row pgx.CollectableRow) (catalog.Part, error) {
	s.p = catalog.Part{}
	err := row.Scan(s.dest...)
	s.p.Category = catalog.Category(s.category)
	return s.p, err
}

// categories are catalog.Categories as strings.
var categories = func() []string {
	s := make([]string, len(catalog.Categories))
	for i, c := range catalog.Categories {
		s[i] = string(c)
	}
	return s
}()

// interned scans a NOT NULL text column into *dst: one of the known strings
// (one, or a set) when the value is among them, with no allocation, and a
// copy of the value otherwise. (pgx hands a BytesScanner the column's bytes,
// valid only during the call.)
type interned struct {
	dst *string
	one string
	set []string
}

func (i *interned) ScanBytes(v []byte) error {
	if v == nil {
		return errors.New("cannot scan NULL into a string")
	}
	if i.one != "" && string(v) == i.one {
		*i.dst = i.one
		return nil
	}
	for _, s := range i.set {
		if string(v) == s {
			*i.dst = s
			return nil
		}
	}
	*i.dst = string(v)
	return nil
}
