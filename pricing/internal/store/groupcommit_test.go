package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carbuild/carbuild/migrations/dbtest"
	"github.com/carbuild/carbuild/pricing/internal/groupcommit"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/quote"
)

// heldStore is a group-commit Store whose next flush can be held, so that
// a test queues orders behind it and knows exactly which batch they form.
type heldStore struct {
	*Store
	hold    atomic.Pointer[chan struct{}]
	entered chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func newHeldStore(t *testing.T) *heldStore {
	h := &heldStore{Store: &Store{pool: dbtest.NewPool(t)}, entered: make(chan struct{}, 1)}
	h.batch = groupcommit.New(func(ctx context.Context, orders []newOrder) []groupcommit.Result[bool] {
		if gate := h.hold.Swap(nil); gate != nil {
			h.entered <- struct{}{}
			<-*gate
		}
		return h.insertBatch(ctx, orders)
	}, groupcommit.Options{Flushers: 1, MaxBatch: 128, Observe: func(b groupcommit.Batch) {
		h.mu.Lock()
		h.sizes = append(h.sizes, b.Size)
		h.mu.Unlock()
	}})
	return h
}

// placement is one SaveOrder call and its answer.
type placement struct {
	customer, key, hash string
	receipt             []byte // an anonymous order's receipt hash
	o                   pricing.Order

	saved     pricing.Order
	savedHash []byte
	created   bool
	err       error
}

var seq atomic.Int64

func newPlacement(customer, key, hash string, qty int) *placement {
	l := quote.Line{Part: quote.Part{ID: 9, Name: "Roda", Category: "wheels", UnitPrice: 50000, Currency: "BRL"}, Quantity: qty, LineTotal: 50000 * int64(qty)}
	return &placement{customer: customer, key: key, hash: hash, o: pricing.Order{
		ID:        fmt.Sprintf("00000000-0000-4000-9000-%012d", seq.Add(1)),
		Status:    "CONFIRMED",
		Customer:  customer,
		CreatedAt: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC),
		Quote:     quote.Quote{Lines: []quote.Line{l}, Currency: "BRL", Subtotal: l.LineTotal, Shipping: 1000, Total: l.LineTotal + 1000},
	}}
}

// round places every order of ps concurrently, behind a held flush, so that
// they all arrive while the only flusher is busy: they form one batch.
func (h *heldStore) round(t *testing.T, ps []*placement) {
	t.Helper()
	gate := make(chan struct{})
	h.hold.Store(&gate)
	blocker := newPlacement("", fmt.Sprintf("blocker-%d", seq.Add(1)), "b", 1)
	var wg sync.WaitGroup
	place := func(p *placement) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.saved, p.savedHash, p.created, p.err = h.SaveOrder(t.Context(), p.o, p.key, []byte(p.hash), p.receipt)
		}()
	}
	place(blocker)
	<-h.entered
	for i, p := range ps {
		place(p)
		for h.batch.Queued() != i+1 { // arrival order decides which duplicate is stored
			select {
			case <-time.After(time.Millisecond):
			case <-t.Context().Done():
				t.Fatalf("order %d never queued", i)
			}
		}
	}
	close(gate)
	wg.Wait()
	if blocker.err != nil || !blocker.created {
		t.Fatalf("blocker: created %v, err %v", blocker.created, blocker.err)
	}
}

// Orders placed at the same moment, with duplicate keys among them, are
// stored exactly once per (customer, key) in one transaction, and every
// caller gets its own answer: the order stored under its key, created for
// exactly one of the callers of a key, with the stored request's hash. An
// order that breaks a constraint fails alone.
func TestGroupCommitExactlyOnce(t *testing.T) {
	t.Parallel()
	h := newHeldStore(t)
	ctx := t.Context()

	// Round 1: 30 keys of alice each sent twice (a client's retry racing
	// its first try), 10 of them a third time with another request, and
	// bob using 10 of the same keys (his own orders).
	var first []*placement
	for k := range 30 {
		first = append(first, newPlacement("alice", fmt.Sprintf("key-%02d", k), "A", 1+k%3))
	}
	for k := range 30 {
		first = append(first, newPlacement("alice", fmt.Sprintf("key-%02d", k), "A", 1+k%3))
	}
	for k := range 10 {
		first = append(first, newPlacement("alice", fmt.Sprintf("key-%02d", k), "other request", 5))
		first = append(first, newPlacement("bob", fmt.Sprintf("key-%02d", k), "B", 2))
	}
	// Anonymous orders carry a receipt hash, stored with the order; one of
	// them twice (the second's receipt is not stored by the insert).
	for k := range 5 {
		p := newPlacement("", fmt.Sprintf("guest-%02d", k), "G", 1)
		p.receipt = []byte(fmt.Sprintf("%-32s", fmt.Sprintf("receipt-%02d", k))) // 32 bytes, a SHA-256
		first = append(first, p)
	}
	dup := newPlacement("", "guest-00", "G", 1)
	dup.receipt = []byte(fmt.Sprintf("%-32s", "receipt-dup"))
	first = append(first, dup)
	h.round(t, first)
	check(t, first)

	var xmins int
	if err := h.pool.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM orders.orders WHERE idempotency_key LIKE 'key-%'`).Scan(&xmins); err != nil {
		t.Fatal(err)
	}
	if xmins != 1 {
		t.Errorf("round 1 stored its orders in %d transactions; want 1", xmins)
	}

	// Round 2: new keys, retries of round 1 and one order whose line
	// breaks order_lines_quantity_positive: the batch's transaction fails
	// and every order is tried alone.
	var second []*placement
	for k := range 10 {
		second = append(second, newPlacement("alice", fmt.Sprintf("new-%02d", k), "N", 1))
		second = append(second, newPlacement("alice", fmt.Sprintf("key-%02d", k), "A", 1+k%3))
	}
	bad := newPlacement("carol", "bad-order", "X", 0)
	second = append(second[:7], append([]*placement{bad}, second[7:]...)...)
	h.round(t, second)
	if bad.err == nil {
		t.Errorf("an order with quantity 0 was stored; want its own error")
	}
	check(t, append(first, second...))

	h.mu.Lock()
	sizes := h.sizes
	h.mu.Unlock()
	if diff := cmp.Diff([]int{1, len(first), 1, len(second)}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}

	var rows, keys, lines, bads int
	if err := h.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (coalesce(customer_id, ''), idempotency_key)),
	  (SELECT count(*) FROM orders.order_lines), (SELECT count(*) FROM orders.orders WHERE idempotency_key = 'bad-order')
	  FROM orders.orders`).Scan(&rows, &keys, &lines, &bads); err != nil {
		t.Fatal(err)
	}
	// alice 30 + 10 new, bob 10, 5 guests, two blockers.
	if want := 30 + 10 + 10 + 5 + 2; rows != want || keys != want || lines != want || bads != 0 {
		t.Errorf("stored %d orders under %d keys with %d lines (%d bad); want %d of each, no bad one", rows, keys, lines, bads, want)
	}
	receipts := map[string]string{}
	r, err := h.pool.Query(ctx, `SELECT o.idempotency_key, convert_from(r.token_hash, 'UTF8') FROM orders.order_receipts r JOIN orders.orders o ON o.id = r.order_id`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var k, v string
		if err := r.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		receipts[k] = v
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for k := range 5 {
		want[fmt.Sprintf("guest-%02d", k)] = fmt.Sprintf("%-32s", fmt.Sprintf("receipt-%02d", k))
	}
	if diff := cmp.Diff(want, receipts); diff != "" {
		t.Errorf("receipts stored (-want +got):\n%s", diff)
	}
}

// check verifies the answers of ps (the bad order aside): per (customer,
// key) exactly one caller created its order, and every caller got the one
// stored order with the hash of the request that stored it.
func check(t *testing.T, ps []*placement) {
	t.Helper()
	type ck struct{ customer, key string }
	stored := map[ck]*placement{}
	for _, p := range ps {
		if p.err != nil || !p.created {
			continue
		}
		k := ck{p.customer, p.key}
		if prev := stored[k]; prev != nil {
			t.Errorf("%s/%s created twice: %s and %s", p.customer, p.key, prev.o.ID, p.o.ID)
		}
		stored[k] = p
	}
	for _, p := range ps {
		if p.key == "bad-order" {
			continue
		}
		if p.err != nil {
			t.Errorf("%s/%s: %v", p.customer, p.key, p.err)
			continue
		}
		winner := stored[ck{p.customer, p.key}]
		if winner == nil {
			t.Errorf("%s/%s: no caller created it", p.customer, p.key)
			continue
		}
		if p.saved.ID != winner.o.ID || string(p.savedHash) != winner.hash {
			t.Errorf("%s/%s (hash %s): answered order %s hash %q; want the stored %s hash %q", p.customer, p.key, p.hash, p.saved.ID, p.savedHash, winner.o.ID, winner.hash)
		}
		if diff := cmp.Diff(winner.o.Quote, p.saved.Quote); diff != "" {
			t.Errorf("%s/%s: answered quote (-stored +answered):\n%s", p.customer, p.key, diff)
		}
	}
}

func TestStatementOrder(t *testing.T) {
	o := func(customer, key string) newOrder { return newOrder{o: pricing.Order{Customer: customer}, key: key} }
	tests := []struct {
		name   string
		orders []newOrder
		want   []int
	}{
		{"by customer, then key", []newOrder{o("bob", "a"), o("alice", "b"), o("alice", "a"), o("", "z")}, []int{3, 2, 1, 0}},
		{"the same key keeps its arrival order", []newOrder{o("alice", "k"), o("alice", "j"), o("alice", "k")}, []int{1, 0, 2}},
		{"one order", []newOrder{o("", "k")}, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, statementOrder(tt.orders)); diff != "" {
				t.Errorf("statementOrder (-want +got):\n%s", diff)
			}
		})
	}
}
