// Package store keeps orders in PostgreSQL (schema orders).
package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carbuild/carbuild/pricing/internal/groupcommit"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/shared/database"
	"github.com/carbuild/carbuild/shared/errs"
)

const (
	// insertOrderSQL stores an order, its lines and (anonymous orders) its
	// first receipt hash in one statement (one round trip, one implicit
	// transaction). When the customer's idempotency key is taken nothing is
	// written and it returns 0 rows.
	insertOrderSQL = `-- name: insert_order
WITH o AS (
  INSERT INTO orders.orders (id, customer_id, idempotency_key, request_hash, status, currency, subtotal_minor, shipping_minor, total_minor, created_at, updated_at)
  VALUES ($1, NULLIF($17::text, ''), $2, $3, $4, $5, $6, $7, $8, $9, $9)
  ON CONFLICT ((coalesce(customer_id, '')), idempotency_key) DO NOTHING
  RETURNING id
), lines AS (
  INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name, category, quantity, unit_price_minor, line_total_minor)
  SELECT o.id, l.line_no, l.part_id, l.part_name, l.category, l.quantity, l.unit_price, l.line_total
  FROM o, unnest($10::int[], $11::bigint[], $12::text[], $13::text[], $14::int[], $15::bigint[], $16::bigint[])
    AS l(line_no, part_id, part_name, category, quantity, unit_price, line_total)
), receipt AS (
  INSERT INTO orders.order_receipts (order_id, token_hash)
  SELECT o.id, $18::bytea FROM o WHERE $18::bytea IS NOT NULL
)
SELECT id FROM o`

	// insertOrdersSQL is insertOrderSQL for many orders in one statement:
	// the orders' columns as arrays ($1-$11, one element per order, in the
	// order they are inserted), their lines flattened ($12-$19, each line
	// naming its order's id). It returns the ids of the orders inserted;
	// an order whose customer's key is taken, by a stored order or by an
	// earlier order of the same statement, inserts nothing.
	insertOrdersSQL = `-- name: insert_orders
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::timestamptz[], $11::bytea[])
    WITH ORDINALITY AS i(id, customer, key, hash, status, currency, subtotal, shipping, total, created, receipt, n)
), o AS (
  INSERT INTO orders.orders (id, customer_id, idempotency_key, request_hash, status, currency, subtotal_minor, shipping_minor, total_minor, created_at, updated_at)
  SELECT id::uuid, NULLIF(customer, ''), key, hash, status, currency, subtotal, shipping, total, created, created FROM input ORDER BY n
  ON CONFLICT ((coalesce(customer_id, '')), idempotency_key) DO NOTHING
  RETURNING id
), lines AS (
  INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name, category, quantity, unit_price_minor, line_total_minor)
  SELECT o.id, l.line_no, l.part_id, l.part_name, l.category, l.quantity, l.unit_price, l.line_total
  FROM unnest($12::text[], $13::int[], $14::bigint[], $15::text[], $16::text[], $17::int[], $18::bigint[], $19::bigint[])
    AS l(order_id, line_no, part_id, part_name, category, quantity, unit_price, line_total)
  JOIN o ON o.id = l.order_id::uuid
), receipt AS (
  INSERT INTO orders.order_receipts (order_id, token_hash)
  SELECT o.id, input.receipt FROM o JOIN input ON input.id::uuid = o.id WHERE input.receipt IS NOT NULL
)
SELECT id::text FROM o`

	orderColumns = `id::text, status, coalesce(customer_id, ''), currency, subtotal_minor, shipping_minor, total_minor, created_at, request_hash`

	// orderByKeySQL: '' is the anonymous customer, as in the unique index.
	orderByKeySQL = `-- name: order_by_key
SELECT ` + orderColumns + `
FROM orders.orders WHERE coalesce(customer_id, '') = $1 AND idempotency_key = $2`

	// orderForSQL finds an order only for its customer or a holder of one of
	// its receipts; customer_id is never '' (a CHECK), so an anonymous
	// caller matches by receipt alone.
	orderForSQL = `-- name: order_for
SELECT ` + orderColumns + `
FROM orders.orders o
WHERE o.id = $1
  AND (o.customer_id = $2
       OR EXISTS (SELECT 1 FROM orders.order_receipts r WHERE r.order_id = o.id AND r.token_hash = $3))`

	// ordersSQL pages through a customer's orders, newest first, by keyset
	// (orders_customer_created_idx).
	ordersSQL = `-- name: orders_of_customer
SELECT ` + orderColumns + `
FROM orders.orders
WHERE customer_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $4`

	orderLinesSQL = `-- name: order_lines
SELECT order_id::text, part_id, part_name, category, quantity, unit_price_minor, line_total_minor
FROM orders.order_lines WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, line_no`

	addReceiptSQL = `-- name: add_receipt
INSERT INTO orders.order_receipts (order_id, token_hash) VALUES ($1, $2)`
)

// Store is the PostgreSQL order store.
type Store struct {
	pool  *pgxpool.Pool
	batch *groupcommit.Batcher[newOrder, bool] // nil: each order commits alone
}

// New returns a Store on pool that commits each order alone.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// NewGroupCommit returns a Store on pool that inserts the orders placed
// concurrently in one transaction (group commit): one commit, so one WAL
// flush, confirms the whole batch, and each caller is answered only after
// it. See insertBatch for how one order's failure is kept from the others.
func NewGroupCommit(pool *pgxpool.Pool, o groupcommit.Options) *Store {
	s := &Store{pool: pool}
	s.batch = groupcommit.New(s.insertBatch, o)
	return s
}

// newOrder is an order to insert.
type newOrder struct {
	o                 pricing.Order
	key               string
	hash, receiptHash []byte
}

// args are insertOrderSQL's parameters.
func (n newOrder) args() []any {
	o, q := n.o, n.o.Quote
	c := len(q.Lines)
	lineNo, qty := make([]int32, c), make([]int32, c)
	partID, unit, total := make([]int64, c), make([]int64, c), make([]int64, c)
	name, category := make([]string, c), make([]string, c)
	for i, l := range q.Lines {
		lineNo[i], qty[i] = int32(i+1), int32(l.Quantity)
		partID[i], unit[i], total[i] = l.Part.ID, l.Part.UnitPrice, l.LineTotal
		name[i], category[i] = l.Part.Name, l.Part.Category
	}
	return []any{o.ID, n.key, n.hash, o.Status, q.Currency, q.Subtotal, q.Shipping, q.Total, o.CreatedAt,
		lineNo, partID, name, category, qty, unit, total, o.Customer, n.receiptHash}
}

// SaveOrder stores an order, its lines and its receipt hash (if any)
// atomically, in one statement (with group commit, in one transaction with
// the orders placed at the same moment). If the customer's key is taken,
// nothing is written and the stored order is returned.
func (s *Store) SaveOrder(ctx context.Context, o pricing.Order, key string, hash, receiptHash []byte) (pricing.Order, []byte, bool, error) {
	n := newOrder{o: o, key: key, hash: hash, receiptHash: receiptHash}
	var created bool
	var err error
	if s.batch != nil {
		created, err = s.batch.Do(ctx, n)
	} else {
		created, err = s.insert(ctx, n)
	}
	if err != nil {
		// A connection lost around the commit is retryable: the client
		// retries with its key, and a commit that did happen is then found
		// by key.
		return pricing.Order{}, nil, false, err
	}
	if created {
		return o, hash, true, nil
	}
	saved, savedHash, err := s.OrderByKey(ctx, o.Customer, key)
	if err != nil {
		return pricing.Order{}, nil, false, err
	}
	return saved, savedHash, false, nil
}

// insert stores one order in its own (implicit) transaction; created is
// false when the customer's key was taken.
func (s *Store) insert(ctx context.Context, n newOrder) (created bool, err error) {
	rows, err := s.pool.Query(ctx, insertOrderSQL, n.args()...)
	if err == nil {
		for rows.Next() {
			created = true // the key was free: this order was inserted
		}
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		return false, fmt.Errorf("insert order: %w", database.Classify(err))
	}
	return created, nil
}

// insertBatch stores orders in one transaction: one statement
// (insertOrdersSQL) inserts them all, so one round trip, one commit and one
// WAL flush cover the batch. The answers count only once that commit is
// confirmed.
//
// The orders are inserted in (customer, key) order: two batches that hold
// the same keys (concurrent retries) then take their index entries in the
// same order and never deadlock. A key taken earlier in the same batch (the
// same order sent twice at once) inserts nothing, like any taken key.
//
// If the statement fails (one order's error rolls back the whole
// transaction; a connection may drop), every order is tried again alone, so
// one order's failure is its own: a bad order fails by itself, and an order
// the batch did commit after all finds its key taken and is answered from
// the stored order.
func (s *Store) insertBatch(ctx context.Context, orders []newOrder) []groupcommit.Result[bool] {
	res := make([]groupcommit.Result[bool], len(orders))
	if len(orders) == 1 {
		res[0].Value, res[0].Err = s.insert(ctx, orders[0])
		return res
	}
	ids, err := s.insertMany(ctx, orders)
	if err == nil {
		for i, o := range orders {
			res[i].Value = ids[o.o.ID]
		}
		return res
	}
	for i, o := range orders {
		res[i].Value, res[i].Err = s.insert(ctx, o)
	}
	return res
}

// insertMany runs insertOrdersSQL and returns the ids it inserted.
func (s *Store) insertMany(ctx context.Context, orders []newOrder) (map[string]bool, error) {
	n := len(orders)
	id, customer, key, status, currency := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	hash, receipt := make([][]byte, n), make([][]byte, n)
	subtotal, shipping, total := make([]int64, n), make([]int64, n), make([]int64, n)
	created := make([]time.Time, n)
	var lOrder, lName, lCategory []string
	var lNo, lQty []int32
	var lPart, lUnit, lTotal []int64
	for j, i := range statementOrder(orders) {
		o := orders[i]
		q := o.o.Quote
		id[j], customer[j], key[j], status[j], currency[j] = o.o.ID, o.o.Customer, o.key, o.o.Status, q.Currency
		hash[j], receipt[j] = o.hash, o.receiptHash
		subtotal[j], shipping[j], total[j], created[j] = q.Subtotal, q.Shipping, q.Total, o.o.CreatedAt
		for k, l := range q.Lines {
			lOrder, lNo, lQty = append(lOrder, o.o.ID), append(lNo, int32(k+1)), append(lQty, int32(l.Quantity))
			lPart, lUnit, lTotal = append(lPart, l.Part.ID), append(lUnit, l.Part.UnitPrice), append(lTotal, l.LineTotal)
			lName, lCategory = append(lName, l.Part.Name), append(lCategory, l.Part.Category)
		}
	}
	rows, err := s.pool.Query(ctx, insertOrdersSQL, id, customer, key, hash, status, currency, subtotal, shipping, total, created, receipt,
		lOrder, lNo, lPart, lName, lCategory, lQty, lUnit, lTotal)
	if err != nil {
		return nil, fmt.Errorf("insert orders: %w", database.Classify(err))
	}
	inserted := make(map[string]bool, n)
	for rows.Next() {
		var got string
		if err := rows.Scan(&got); err != nil {
			rows.Close()
			return nil, fmt.Errorf("insert orders: %w", database.Classify(err))
		}
		inserted[got] = true
	}
	rows.Close()
	// Rows read to the end: the statement, and its implicit transaction,
	// committed.
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert orders: %w", database.Classify(err))
	}
	return inserted, nil
}

// statementOrder returns the indexes of orders sorted by (customer, key),
// the order insertBatch inserts them in.
func statementOrder(orders []newOrder) []int {
	idx := make([]int, len(orders))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(strings.Compare(orders[a].o.Customer, orders[b].o.Customer), strings.Compare(orders[a].key, orders[b].key))
	})
	return idx
}

// OrderByKey returns the order customer ("" for anonymous) placed with key.
func (s *Store) OrderByKey(ctx context.Context, customer, key string) (pricing.Order, []byte, error) {
	orders, hashes, err := s.load(ctx, orderByKeySQL, customer, key)
	if err != nil {
		return pricing.Order{}, nil, err
	}
	if len(orders) == 0 {
		return pricing.Order{}, nil, errs.New(errs.NotFound, "order not found")
	}
	return orders[0], hashes[0], nil
}

// OrderFor returns order id if customer placed it or receiptHash is one of
// its receipts; errs.NotFound otherwise.
func (s *Store) OrderFor(ctx context.Context, id, customer string, receiptHash []byte) (pricing.Order, error) {
	orders, _, err := s.load(ctx, orderForSQL, id, customer, receiptHash)
	if err != nil {
		return pricing.Order{}, err
	}
	if len(orders) == 0 {
		return pricing.Order{}, errs.New(errs.NotFound, "order not found")
	}
	return orders[0], nil
}

// Orders returns up to limit of customer's orders, newest first, after the
// cursor.
func (s *Store) Orders(ctx context.Context, customer string, after *pricing.Cursor, limit int) ([]pricing.Order, error) {
	var at any // NULL: from the newest
	id := "00000000-0000-0000-0000-000000000000"
	if after != nil {
		at, id = after.CreatedAt, after.ID
	}
	orders, _, err := s.load(ctx, ordersSQL, customer, at, id, limit)
	return orders, err
}

// AddReceipt stores another receipt hash of an anonymous order.
func (s *Store) AddReceipt(ctx context.Context, orderID string, receiptHash []byte) error {
	if _, err := s.pool.Exec(ctx, addReceiptSQL, orderID, receiptHash); err != nil {
		return fmt.Errorf("add receipt: %w", database.Classify(err))
	}
	return nil
}

// load runs a query of orderColumns and loads the lines of every order found.
func (s *Store) load(ctx context.Context, sql string, args ...any) ([]pricing.Order, [][]byte, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("load orders: %w", database.Classify(err))
	}
	var orders []pricing.Order
	var hashes [][]byte
	for rows.Next() {
		var o pricing.Order
		var hash []byte
		q := &o.Quote
		if err := rows.Scan(&o.ID, &o.Status, &o.Customer, &q.Currency, &q.Subtotal, &q.Shipping, &q.Total, &o.CreatedAt, &hash); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("load orders: %w", database.Classify(err))
		}
		q.FreeShipping = q.Shipping == 0 && q.Subtotal > quote.FreeShippingAbove
		o.CreatedAt = o.CreatedAt.UTC()
		orders, hashes = append(orders, o), append(hashes, hash)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load orders: %w", database.Classify(err))
	}
	if len(orders) == 0 {
		return nil, nil, nil
	}
	ids := make([]string, len(orders))
	index := make(map[string]int, len(orders))
	for i, o := range orders {
		ids[i], index[o.ID] = o.ID, i
	}
	rows, err = s.pool.Query(ctx, orderLinesSQL, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("load order lines: %w", database.Classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var l quote.Line
		if err := rows.Scan(&id, &l.Part.ID, &l.Part.Name, &l.Part.Category, &l.Quantity, &l.Part.UnitPrice, &l.LineTotal); err != nil {
			return nil, nil, fmt.Errorf("load order lines: %w", database.Classify(err))
		}
		o := &orders[index[id]]
		l.Part.Currency = o.Quote.Currency
		o.Quote.Lines = append(o.Quote.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load order lines: %w", database.Classify(err))
	}
	return orders, hashes, nil
}
