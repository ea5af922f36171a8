// Package pricing quotes baskets and places orders. It never trusts a price
// from a client: every price comes from the catalog by part id, and every
// total is recomputed with the rules of package quote. Orders are idempotent
// by key.
package pricing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/carbuild/carbuild/pricing/internal/money"
	"github.com/carbuild/carbuild/pricing/internal/quote"
)

// Errors of the pricing domain; the transport maps them to status codes.
var (
	ErrInvalid      = errors.New("invalid argument")
	ErrNotFound     = errors.New("not found")
	ErrPriceChanged = errors.New("total changed")
	ErrConflict     = errors.New("idempotency key reused with a different order")
	ErrUnavailable  = errors.New("dependency unavailable")
)

// StatusConfirmed is the status of a placed order.
const StatusConfirmed = "CONFIRMED"

// Limits on order requests.
const (
	MinKeyLength = 8
	MaxKeyLength = 128
)

// Catalog prices parts. Errors wrap ErrNotFound (unknown part), ErrInvalid or
// ErrUnavailable.
type Catalog interface {
	Parts(ctx context.Context, ids []int64) (map[int64]quote.Part, error)
}

// Order is a stored order.
type Order struct {
	ID        string
	Status    string
	Quote     quote.Quote
	CreatedAt time.Time
}

// Store keeps orders.
type Store interface {
	// OrderByKey returns the order placed with key and the hash of its
	// request; ErrNotFound when none.
	OrderByKey(ctx context.Context, key string) (Order, []byte, error)
	// SaveOrder stores o under key in one transaction. When key is already
	// taken (a concurrent retry won), it returns the stored order, its request
	// hash and created=false.
	SaveOrder(ctx context.Context, o Order, key string, hash []byte) (saved Order, savedHash []byte, created bool, err error)
	// Order returns an order by id; ErrNotFound when none.
	Order(ctx context.Context, id string) (Order, error)
}

// Service quotes and places orders.
type Service struct {
	catalog Catalog
	store   Store
	metrics *Metrics
	now     func() time.Time
}

// NewService returns a Service; m may be nil.
func NewService(c Catalog, s Store, m *Metrics) *Service {
	return &Service{catalog: c, store: s, metrics: m, now: time.Now}
}

// Quote prices a basket. An empty basket quotes to zero.
func (s *Service) Quote(ctx context.Context, items []quote.Item) (quote.Quote, error) {
	q, err := s.quote(ctx, items)
	s.metrics.quoted(err)
	return q, err
}

func (s *Service) quote(ctx context.Context, items []quote.Item) (quote.Quote, error) {
	merged, err := quote.Merge(items)
	if err != nil {
		return quote.Quote{}, fmt.Errorf("%w: %v", ErrInvalid, trimPrefix(err))
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
	q, err := quote.Compute(merged, parts)
	if err != nil {
		return quote.Quote{}, fmt.Errorf("%w: %v", ErrInvalid, trimPrefix(err))
	}
	return q, nil
}

// PlaceOrderRequest asks to place an order.
type PlaceOrderRequest struct {
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
	if err := validKey(r.IdempotencyKey); err != nil {
		return Order{}, false, err
	}
	if r.Currency != money.BRL {
		return Order{}, false, fmt.Errorf("%w: expected total must be in %s, got %q", ErrInvalid, money.BRL, r.Currency)
	}
	merged, err := quote.Merge(r.Items)
	if err != nil {
		return Order{}, false, fmt.Errorf("%w: %v", ErrInvalid, trimPrefix(err))
	}
	if len(merged) == 0 {
		return Order{}, false, fmt.Errorf("%w: an order needs at least one item", ErrInvalid)
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
		order := Order{ID: id, Status: StatusConfirmed, Quote: q, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
		saved, savedHash, created, err := s.store.SaveOrder(ctx, order, r.IdempotencyKey, hash)
		if err != nil {
			return Order{}, false, err
		}
		if !created {
			return replay(saved, savedHash, hash)
		}
		return saved, false, nil
	}

	// The basket can't be priced now, or its total changed: a retry of an
	// order placed earlier still returns that order.
	prev, prevHash, err := s.store.OrderByKey(ctx, r.IdempotencyKey)
	switch {
	case err == nil:
		return replay(prev, prevHash, hash)
	case !errors.Is(err, ErrNotFound):
		return Order{}, false, err
	case quoteErr != nil:
		return Order{}, false, quoteErr
	}
	return Order{}, false, fmt.Errorf("%w: expected %s, the current total is %s; quote again",
		ErrPriceChanged, money.Format(r.ExpectedTotal), money.Format(q.Total))
}

// GetOrder returns a stored order.
func (s *Service) GetOrder(ctx context.Context, id string) (Order, error) {
	if !validOrderID(id) {
		return Order{}, fmt.Errorf("%w: order id %q is not a valid order id", ErrInvalid, truncate(id, 40))
	}
	return s.store.Order(ctx, id)
}

func replay(prev Order, prevHash, hash []byte) (Order, bool, error) {
	if !bytes.Equal(prevHash, hash) {
		return Order{}, false, fmt.Errorf("%w: the key was first used for order %s", ErrConflict, prev.ID)
	}
	return prev, true, nil
}

func validKey(k string) error {
	if len(k) < MinKeyLength || len(k) > MaxKeyLength {
		return fmt.Errorf("%w: idempotency key must be %d-%d characters, got %d", ErrInvalid, MinKeyLength, MaxKeyLength, len(k))
	}
	for _, c := range []byte(k) {
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: idempotency key must be printable ASCII without spaces", ErrInvalid)
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
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("order id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
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
	if len(id) != 36 {
		return false
	}
	for i, c := range []byte(id) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// trimPrefix drops quote.ErrInvalid's own text so a message reads once.
func trimPrefix(err error) string {
	msg := err.Error()
	p := quote.ErrInvalid.Error() + ": "
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
