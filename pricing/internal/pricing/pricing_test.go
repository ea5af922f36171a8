package pricing_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/carbuild/carbuild/migrations/dbtest"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/pricing/internal/store"
	"github.com/carbuild/carbuild/shared/errs"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// catalogStub serves fixed prices in place of the catalog service (the
// end-to-end tests use the real one over gRPC); prices can change mid-test.
type catalogStub struct {
	mu    sync.Mutex
	parts map[int64]quote.Part
	calls int
	err   error // when set, every lookup fails with it
}

func newCatalog() *catalogStub {
	return &catalogStub{parts: map[int64]quote.Part{
		7:  {ID: 7, Name: "Chassi", Category: quote.CategoryChassis, UnitPrice: 800000, Currency: "BRL"},
		10: {ID: 10, Name: "Farol LED", Category: "headlight", UnitPrice: 35000, Currency: "BRL"},
		14: {ID: 14, Name: "Chassi", Category: quote.CategoryChassis, UnitPrice: 750000, Currency: "BRL"},
	}}
}

func (c *catalogStub) Parts(_ context.Context, ids []int64) (map[int64]quote.Part, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.err != nil {
		return nil, c.err
	}
	out := map[int64]quote.Part{}
	for _, id := range ids {
		p, ok := c.parts[id]
		if !ok {
			return nil, errs.New(errs.NotFound, "part %d not found", id)
		}
		out[id] = p
	}
	return out, nil
}

func (c *catalogStub) setPrice(id, price int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[id]
	p.UnitPrice = price
	c.parts[id] = p
}

func (c *catalogStub) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func newService(t *testing.T) (*pricing.Service, *catalogStub) {
	cat := newCatalog()
	return pricing.NewService(cat, store.New(dbtest.NewPool(t)), nil), cat
}

func TestPlaceOrderStoresAndReplays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newService(t)
	req := pricing.PlaceOrderRequest{
		IdempotencyKey: "key-00000001",
		Items:          []quote.Item{{PartID: 7, Quantity: 1}, {PartID: 10, Quantity: 2}},
		ExpectedTotal:  874500, Currency: "BRL",
	}
	first, replayed, err := svc.PlaceOrder(ctx, req)
	if err != nil || replayed {
		t.Fatalf("PlaceOrder = replayed %v, err %v; want a new order", replayed, err)
	}
	if first.Quote.Total != 874500 || first.Status != pricing.StatusConfirmed || len(first.Quote.Lines) != 2 {
		t.Errorf("order = %+v, want total 874500, CONFIRMED, 2 lines", first)
	}
	// Same key, same items in another order and split: the same order.
	req.Items = []quote.Item{{PartID: 10, Quantity: 1}, {PartID: 7, Quantity: 1}, {PartID: 10, Quantity: 1}}
	again, replayed, err := svc.PlaceOrder(ctx, req)
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("retry = %s replayed %v err %v; want order %s replayed", again.ID, replayed, err, first.ID)
	}
	got, err := svc.GetOrder(ctx, first.ID, "", first.ReceiptToken)
	if err != nil {
		t.Fatal(err)
	}
	if got.Quote.Total != 874500 || got.Quote.Subtotal != 870000 || got.Quote.Shipping != 4500 || len(got.Quote.Lines) != 2 {
		t.Errorf("stored order = %+v", got.Quote)
	}
	if got.Quote.Lines[0].Part.ID != 7 || got.Quote.Lines[1].Quantity != 2 || got.Quote.Lines[1].LineTotal != 70000 {
		t.Errorf("stored lines = %+v", got.Quote.Lines)
	}
}

func TestPlaceOrderRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, cat := newService(t)
	ok := pricing.PlaceOrderRequest{IdempotencyKey: "refusal-key-1", Items: []quote.Item{{PartID: 10, Quantity: 1}}, ExpectedTotal: 37000, Currency: "BRL"}
	if _, _, err := svc.PlaceOrder(ctx, ok); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(r *pricing.PlaceOrderRequest)
		wantErr error
	}{
		{"key reused with other items", func(r *pricing.PlaceOrderRequest) {
			r.Items = []quote.Item{{PartID: 10, Quantity: 2}}
			r.ExpectedTotal = 73000
		}, errs.Conflict},
		{"key reused with other total", func(r *pricing.PlaceOrderRequest) { r.ExpectedTotal = 37001 }, errs.Conflict},
		{"short key", func(r *pricing.PlaceOrderRequest) { r.IdempotencyKey = "abc" }, errs.InvalidArgument},
		{"key with spaces", func(r *pricing.PlaceOrderRequest) { r.IdempotencyKey = "has a space" }, errs.InvalidArgument},
		{"wrong total", func(r *pricing.PlaceOrderRequest) { r.IdempotencyKey = "new-key-0002"; r.ExpectedTotal = 36000 }, errs.FailedPrecondition},
		{"total one centavo off is fine", func(r *pricing.PlaceOrderRequest) { r.IdempotencyKey = "new-key-0003"; r.ExpectedTotal = 37001 }, nil},
		{"empty order", func(r *pricing.PlaceOrderRequest) { r.IdempotencyKey = "new-key-0004"; r.Items = nil }, errs.InvalidArgument},
		{"two chassis", func(r *pricing.PlaceOrderRequest) {
			r.IdempotencyKey = "new-key-0005"
			r.Items = []quote.Item{{PartID: 7, Quantity: 1}, {PartID: 14, Quantity: 1}}
		}, errs.InvalidArgument},
		{"unknown part", func(r *pricing.PlaceOrderRequest) {
			r.IdempotencyKey = "new-key-0006"
			r.Items = []quote.Item{{PartID: 99, Quantity: 1}}
		}, errs.NotFound},
		{"other currency", func(r *pricing.PlaceOrderRequest) { r.IdempotencyKey = "new-key-0007"; r.Currency = "USD" }, errs.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.mutate(&r)
			_, _, err := svc.PlaceOrder(ctx, r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("PlaceOrder error = %v, want %v", err, tt.wantErr)
			}
		})
	}

	// Prices change after the first order: a retry of that order still gets
	// it back, a new order at the old total is refused.
	cat.setPrice(10, 40000)
	if _, replayed, err := svc.PlaceOrder(ctx, ok); err != nil || !replayed {
		t.Errorf("retry after a price change: replayed %v err %v; want the stored order", replayed, err)
	}
	r := ok
	r.IdempotencyKey = "after-price-change"
	if _, _, err := svc.PlaceOrder(ctx, r); !errors.Is(err, errs.FailedPrecondition) {
		t.Errorf("new order at the old total: err %v, want ErrPriceChanged", err)
	}

	// The catalog is down: a retry of a stored order is still answered (from
	// the store), a new order gets the catalog's error.
	cat.fail(errs.New(errs.Unavailable, "catalog down"))
	if _, replayed, err := svc.PlaceOrder(ctx, ok); err != nil || !replayed {
		t.Errorf("retry while the catalog is down: replayed %v err %v; want the stored order", replayed, err)
	}
	r.IdempotencyKey = "while-catalog-down"
	if _, _, err := svc.PlaceOrder(ctx, r); !errors.Is(err, errs.Unavailable) {
		t.Errorf("new order while the catalog is down: err %v, want ErrUnavailable", err)
	}
}

func TestConcurrentRetriesMakeOneOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := pricing.NewService(newCatalog(), store.New(pool), nil)
	req := pricing.PlaceOrderRequest{IdempotencyKey: "concurrent-key", Items: []quote.Item{{PartID: 7, Quantity: 1}}, ExpectedTotal: 802000, Currency: "BRL"}
	const n = 16
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, _, err := svc.PlaceOrder(ctx, req)
			ids[i], errs[i] = o.ID, err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("request %d got order %s, request 0 got %s", i, ids[i], ids[0])
		}
	}
	var orders, lines int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders.orders`).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders.order_lines`).Scan(&lines); err != nil {
		t.Fatal(err)
	}
	if orders != 1 || lines != 1 {
		t.Errorf("database holds %d orders and %d lines, want 1 and 1", orders, lines)
	}
}

func TestQuoteAndGetOrderErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newService(t)
	q, err := svc.Quote(ctx, nil)
	if err != nil || q.Total != 0 {
		t.Errorf("empty quote = %+v, %v; want zero", q, err)
	}
	if _, err := svc.Quote(ctx, []quote.Item{{PartID: 10, Quantity: 100}}); !errors.Is(err, errs.InvalidArgument) {
		t.Errorf("quantity 100: err %v, want ErrInvalid", err)
	}
	if _, err := svc.GetOrder(ctx, "not-a-uuid", "alice", ""); !errors.Is(err, errs.InvalidArgument) {
		t.Errorf("GetOrder(bad id) err %v, want ErrInvalid", err)
	}
	if _, err := svc.GetOrder(ctx, "00000000-0000-4000-8000-000000000000", "alice", ""); !errors.Is(err, errs.NotFound) {
		t.Errorf("GetOrder(unknown) err %v, want ErrNotFound", err)
	}
}
