// Package pricing quotes baskets and places orders. It never trusts a price
// from a client: every price comes from the catalog by part id, and every
// total is recomputed with the rules of package quote. Orders belong to the
// customer who placed them (the verified token subject) and are idempotent by
// key within that customer; an anonymous order is read back only with the
// receipt token handed out when it was placed.
package pricing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/carbuild/carbuild/pricing/internal/money"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/shared/errs"
)

// StatusConfirmed is the status of a placed order.
const StatusConfirmed = "CONFIRMED"

// Limits on order requests.
const (
	MinKeyLength = 8
	MaxKeyLength = 128
)

// Catalog prices parts. Its errors are of kind errs.NotFound (unknown
// part), errs.InvalidArgument or errs.Unavailable.
type Catalog interface {
	Parts(ctx context.Context, ids []int64) (map[int64]quote.Part, error)
}

// Order is a stored order.
type Order struct {
	ID     string
	Status string
	// Customer is the subject that placed it; empty for an anonymous order.
	Customer  string
	Quote     quote.Quote
	CreatedAt time.Time
	// ReceiptToken is set only on an anonymous order just placed (or
	// replayed): the secret that reads it back. Only its hash is stored.
	ReceiptToken string
}

// Cursor is a position in a customer's orders, newest first: the next page
// starts after the order created at CreatedAt with id ID.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// Store keeps orders.
type Store interface {
	// OrderByKey returns the order customer ("" for anonymous) placed with
	// key and the hash of its request; errs.NotFound when none.
	OrderByKey(ctx context.Context, customer, key string) (Order, []byte, error)
	// SaveOrder stores o under (o.Customer, key) in one transaction, with
	// receiptHash (nil for a customer's order). When the key is already taken
	// (a concurrent retry won), it writes nothing and returns the stored
	// order, its request hash and created=false.
	SaveOrder(ctx context.Context, o Order, key string, hash, receiptHash []byte) (saved Order, savedHash []byte, created bool, err error)
	// AddReceipt adds another receipt hash to an anonymous order.
	AddReceipt(ctx context.Context, orderID string, receiptHash []byte) error
	// OrderFor returns order id if customer placed it (customer not empty)
	// or receiptHash is one of its receipts; errs.NotFound otherwise, the same
	// as for an id that does not exist.
	OrderFor(ctx context.Context, id, customer string, receiptHash []byte) (Order, error)
	// Orders returns up to limit orders of customer, newest first, after the
	// cursor (nil: from the newest).
	Orders(ctx context.Context, customer string, after *Cursor, limit int) ([]Order, error)
}

// Service quotes and places orders.
type Service struct {
	catalog   Catalog
	store     Store
	metrics   *Metrics
	now       func() time.Time
	anonymous bool
}

// NewService returns a Service; m may be nil. Anonymous orders are allowed
// until RefuseAnonymousOrders.
func NewService(c Catalog, s Store, m *Metrics) *Service {
	return &Service{catalog: c, store: s, metrics: m, now: time.Now, anonymous: true}
}

// RefuseAnonymousOrders makes PlaceOrder without a customer fail with
// errs.Unauthenticated (ANONYMOUS_ORDERS=false).
func (s *Service) RefuseAnonymousOrders() { s.anonymous = false }

// Quote prices a basket. An empty basket quotes to zero.
func (s *Service) Quote(ctx context.Context, items []quote.Item) (quote.Quote, error) {
	q, err := s.quote(ctx, items)
	s.metrics.quoted(err)
	return q, err
}

func (s *Service) quote(ctx context.Context, items []quote.Item) (quote.Quote, error) {
	merged, err := quote.Merge(items)
	if err != nil {
		return quote.Quote{}, err
	}
	if len(merged) == 0 {
		return quote.Compute(nil, nil)
	}
	ids := make([]int64, len(merged))
	for i, it := range merged {
		ids[i] = it.PartID
	}
	parts, err := s.catalog.Parts(ctx, ids)
	if err != nil {
		return quote.Quote{}, err
	}
	return quote.Compute(merged, parts)
}

// PlaceOrderRequest asks to place an order.
type PlaceOrderRequest struct {
	// Customer is the verified subject placing the order; empty: anonymous.
	Customer       string
	IdempotencyKey string
	Items          []quote.Item
	// ExpectedTotal is the total the client was quoted, in minor units of
	// Currency.
	ExpectedTotal int64
	Currency      string
}

// PlaceOrder places an order, or returns the order already placed with the
// same key and the same request (replayed=true).
func (s *Service) PlaceOrder(ctx context.Context, r PlaceOrderRequest) (o Order, replayed bool, err error) {
	defer func() { s.metrics.ordered(o, replayed, err) }()
	if r.Customer == "" && !s.anonymous {
		return Order{}, false, errs.New(errs.Unauthenticated, "this server takes orders only from signed-in customers; send a bearer token")
	}
	if err := validKey(r.IdempotencyKey); err != nil {
		return Order{}, false, err
	}
	if r.Currency != money.BRL {
		return Order{}, false, errs.New(errs.InvalidArgument, "expected total must be in %s, got %q", money.BRL, r.Currency)
	}
	merged, err := quote.Merge(r.Items)
	if err != nil {
		return Order{}, false, err
	}
	if len(merged) == 0 {
		return Order{}, false, errs.New(errs.InvalidArgument, "an order needs at least one item")
	}
	hash := requestHash(merged, r.ExpectedTotal, r.Currency)

	// The common case, a new order at the current prices, is one catalog
	// lookup and one statement; a key already taken makes SaveOrder return
	// the stored order.
	q, quoteErr := s.quote(ctx, merged)
	if quoteErr == nil && quote.TotalsMatch(r.ExpectedTotal, q.Total) {
		id, err := newOrderID()
		if err != nil {
			return Order{}, false, err
		}
		// PostgreSQL keeps microseconds; the answer must equal what is stored.
		order := Order{ID: id, Status: StatusConfirmed, Customer: r.Customer, Quote: q, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
		var receipt string
		var receiptHash []byte
		if r.Customer == "" {
			if receipt, receiptHash, err = newReceipt(); err != nil {
				return Order{}, false, err
			}
		}
		saved, savedHash, created, err := s.store.SaveOrder(ctx, order, r.IdempotencyKey, hash, receiptHash)
		if err != nil {
			return Order{}, false, err
		}
		if !created {
			return s.replay(ctx, saved, savedHash, hash)
		}
		saved.ReceiptToken = receipt
		return saved, false, nil
	}

	// The basket can't be priced now, or its total changed: a retry of an
	// order placed earlier still returns that order.
	prev, prevHash, err := s.store.OrderByKey(ctx, r.Customer, r.IdempotencyKey)
	switch {
	case err == nil:
		return s.replay(ctx, prev, prevHash, hash)
	case !errors.Is(err, errs.NotFound):
		return Order{}, false, err
	case quoteErr != nil:
		return Order{}, false, quoteErr
	}
	return Order{}, false, errs.New(errs.FailedPrecondition, "total changed: expected %s, the current total is %s; quote again",
		money.Format(r.ExpectedTotal), money.Format(q.Total))
}

// GetOrder returns order id to customer (the verified subject, empty when
// anonymous) if it placed it, or to anyone holding one of its receipt
// tokens. Every other case is errs.NotFound, indistinguishable from an id that
// does not exist.
func (s *Service) GetOrder(ctx context.Context, id, customer, receipt string) (Order, error) {
	if !validOrderID(id) {
		return Order{}, errs.New(errs.InvalidArgument, "order id %q is not a valid order id", errs.Truncate(id))
	}
	var receiptHash []byte
	if receipt != "" && len(receipt) <= maxReceiptLength {
		receiptHash = hashReceipt(receipt)
	}
	if customer == "" && receiptHash == nil {
		return Order{}, errs.New(errs.NotFound, "order not found")
	}
	return s.store.OrderFor(ctx, id, customer, receiptHash)
}

// Page sizes of ListOrders.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ListOrders returns a page of customer's orders, newest first, and the
// token of the next page ("" after the last).
func (s *Service) ListOrders(ctx context.Context, customer string, pageSize int, pageToken string) ([]Order, string, error) {
	if customer == "" {
		return nil, "", errs.New(errs.Unauthenticated, "listing orders needs a bearer token")
	}
	switch {
	case pageSize < 0 || pageSize > MaxPageSize:
		return nil, "", errs.New(errs.InvalidArgument, "page size must be 0-%d, got %d", MaxPageSize, pageSize)
	case pageSize == 0:
		pageSize = DefaultPageSize
	}
	var after *Cursor
	if pageToken != "" {
		c, err := decodeCursor(pageToken)
		if err != nil {
			return nil, "", err
		}
		after = &c
	}
	// One more than asked tells whether there is a next page.
	orders, err := s.store.Orders(ctx, customer, after, pageSize+1)
	if err != nil {
		return nil, "", err
	}
	if len(orders) <= pageSize {
		return orders, "", nil
	}
	orders = orders[:pageSize]
	last := orders[len(orders)-1]
	return orders, encodeCursor(Cursor{CreatedAt: last.CreatedAt, ID: last.ID}), nil
}

// replay answers a retry: the same order for the same request, a conflict
// that names no order for a different one. An anonymous order gets a fresh
// receipt, so a client whose first answer was lost can still read it.
func (s *Service) replay(ctx context.Context, prev Order, prevHash, hash []byte) (Order, bool, error) {
	if !bytes.Equal(prevHash, hash) {
		return Order{}, false, errs.New(errs.Conflict, "idempotency key reused with a different order: this idempotency key was already used for a different order request; use a new key")
	}
	if prev.Customer == "" {
		receipt, receiptHash, err := newReceipt()
		if err != nil {
			return Order{}, false, err
		}
		if err := s.store.AddReceipt(ctx, prev.ID, receiptHash); err != nil {
			return Order{}, false, err
		}
		prev.ReceiptToken = receipt
	}
	return prev, true, nil
}

func validKey(k string) error {
	if len(k) < MinKeyLength || len(k) > MaxKeyLength {
		return errs.New(errs.InvalidArgument, "idempotency key must be %d-%d characters, got %d", MinKeyLength, MaxKeyLength, len(k))
	}
	for _, c := range []byte(k) {
		if c < 0x21 || c > 0x7e {
			return errs.New(errs.InvalidArgument, "idempotency key must be printable ASCII without spaces")
		}
	}
	return nil
}

// requestHash identifies an order request independently of line order and
// of how repeated parts were split.
func requestHash(items []quote.Item, expectedTotal int64, currency string) []byte {
	h := sha256.New()
	var buf [8]byte
	for _, it := range quote.Canonical(items) {
		binary.BigEndian.PutUint64(buf[:], uint64(it.PartID))
		h.Write(buf[:])
		binary.BigEndian.PutUint64(buf[:], uint64(it.Quantity))
		h.Write(buf[:])
	}
	binary.BigEndian.PutUint64(buf[:], uint64(expectedTotal))
	h.Write(buf[:])
	h.Write([]byte(currency))
	return h.Sum(nil)
}

// newOrderID returns a random (version 4) UUID: 122 random bits, so ids can't
// be guessed or enumerated.
func newOrderID() (string, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("order id: %w", err)
	}
	return id.String(), nil
}

// NewIdempotencyKey returns a random key for callers that bring none (the
// seed-compatible API).
func NewIdempotencyKey() (string, error) {
	id, err := newOrderID()
	if err != nil {
		return "", err
	}
	return "auto-" + id, nil
}

func validOrderID(id string) bool {
	// Only the hyphenated form: uuid.Validate also takes braces, a urn
	// prefix and no hyphens, which would make two ids name one order.
	return len(id) == 36 && uuid.Validate(id) == nil
}
