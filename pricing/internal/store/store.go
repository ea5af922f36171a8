// Package store keeps orders in PostgreSQL (schema orders).
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/quote"
)

const (
	// insertOrderSQL stores an order and its lines in one statement (one
	// round trip, one implicit transaction). When the idempotency key is
	// taken nothing is written and it returns 0 rows.
	insertOrderSQL = `-- name: insert_order
WITH o AS (
  INSERT INTO orders.orders (id, idempotency_key, request_hash, status, currency, subtotal_minor, shipping_minor, total_minor, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
  ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING id
), lines AS (
  INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name, category, quantity, unit_price_minor, line_total_minor)
  SELECT o.id, l.line_no, l.part_id, l.part_name, l.category, l.quantity, l.unit_price, l.line_total
  FROM o, unnest($10::int[], $11::bigint[], $12::text[], $13::text[], $14::int[], $15::bigint[], $16::bigint[])
    AS l(line_no, part_id, part_name, category, quantity, unit_price, line_total)
)
SELECT id FROM o`

	orderByKeySQL = `-- name: order_by_key
SELECT id::text, status, currency, subtotal_minor, shipping_minor, total_minor, created_at, request_hash
FROM orders.orders WHERE idempotency_key = $1`

	orderByIDSQL = `-- name: order_by_id
SELECT id::text, status, currency, subtotal_minor, shipping_minor, total_minor, created_at, request_hash
FROM orders.orders WHERE id = $1`

	orderLinesSQL = `-- name: order_lines
SELECT part_id, part_name, category, quantity, unit_price_minor, line_total_minor
FROM orders.order_lines WHERE order_id = $1 ORDER BY line_no`
)

// Store is the PostgreSQL order store.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// SaveOrder stores an order and its lines atomically, in one statement. If
// the key is taken, nothing is written and the stored order is returned.
func (s *Store) SaveOrder(ctx context.Context, o pricing.Order, key string, hash []byte) (pricing.Order, []byte, bool, error) {
	q := o.Quote
	n := len(q.Lines)
	lineNo, qty := make([]int32, n), make([]int32, n)
	partID, unit, total := make([]int64, n), make([]int64, n), make([]int64, n)
	name, category := make([]string, n), make([]string, n)
	for i, l := range q.Lines {
		lineNo[i], qty[i] = int32(i+1), int32(l.Quantity)
		partID[i], unit[i], total[i] = l.Part.ID, l.Part.UnitPrice, l.LineTotal
		name[i], category[i] = l.Part.Name, l.Part.Category
	}
	rows, err := s.pool.Query(ctx, insertOrderSQL, o.ID, key, hash, o.Status, q.Currency, q.Subtotal, q.Shipping, q.Total, o.CreatedAt,
		lineNo, partID, name, category, qty, unit, total)
	created := false
	if err == nil {
		for rows.Next() {
			created = true // the key was free: this order was inserted
		}
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		// A connection lost around the commit is retryable: the client
		// retries with its key, and a commit that did happen is then found
		// by key.
		return pricing.Order{}, nil, false, fmt.Errorf("insert order: %w", mapErr(err))
	}
	if created {
		return o, hash, true, nil
	}
	saved, savedHash, err := s.OrderByKey(ctx, key)
	if err != nil {
		return pricing.Order{}, nil, false, err
	}
	return saved, savedHash, false, nil
}

// OrderByKey returns the order placed with an idempotency key.
func (s *Store) OrderByKey(ctx context.Context, key string) (pricing.Order, []byte, error) {
	return s.load(ctx, orderByKeySQL, key)
}

// Order returns an order by id.
func (s *Store) Order(ctx context.Context, id string) (pricing.Order, error) {
	o, _, err := s.load(ctx, orderByIDSQL, id)
	return o, err
}

func (s *Store) load(ctx context.Context, sql string, arg string) (pricing.Order, []byte, error) {
	var o pricing.Order
	var hash []byte
	q := &o.Quote
	err := s.pool.QueryRow(ctx, sql, arg).Scan(&o.ID, &o.Status, &q.Currency, &q.Subtotal, &q.Shipping, &q.Total, &o.CreatedAt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return pricing.Order{}, nil, fmt.Errorf("%w: order", pricing.ErrNotFound)
	}
	if err != nil {
		return pricing.Order{}, nil, fmt.Errorf("load order: %w", mapErr(err))
	}
	q.FreeShipping = q.Shipping == 0 && q.Subtotal > quote.FreeShippingAbove
	o.CreatedAt = o.CreatedAt.UTC()
	rows, err := s.pool.Query(ctx, orderLinesSQL, o.ID)
	if err != nil {
		return pricing.Order{}, nil, fmt.Errorf("load order lines: %w", mapErr(err))
	}
	lines, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (quote.Line, error) {
		var l quote.Line
		err := row.Scan(&l.Part.ID, &l.Part.Name, &l.Part.Category, &l.Quantity, &l.Part.UnitPrice, &l.LineTotal)
		l.Part.Currency = q.Currency
		return l, err
	})
	if err != nil {
		return pricing.Order{}, nil, fmt.Errorf("load order lines: %w", mapErr(err))
	}
	q.Lines = lines
	return o, hash, nil
}

// mapErr turns connection-level failures into pricing.ErrUnavailable so the
// caller answers UNAVAILABLE (retryable) instead of a generic failure.
func mapErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57", "53": // connection exception, operator intervention, insufficient resources
			return fmt.Errorf("%w: database: %s", pricing.ErrUnavailable, pgErr.Message)
		}
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: database: %v", pricing.ErrUnavailable, err)
}
