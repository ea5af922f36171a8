package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/carbuild/carbuild/migrations/dbtest"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/store"
	"github.com/carbuild/carbuild/shared/errs"
)

func receiptHash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// Idempotency keys are per customer: the same key of alice, bob and an
// anonymous caller are three orders, and each finds only its own by key.
func TestKeysArePerCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(dbtest.NewPool(t))
	ids := map[string]string{}
	for _, customer := range []string{"alice", "bob", ""} {
		o := order(line(7, "Chassi", "chassis", 800000, 1))
		o.Customer = customer
		var rh []byte
		if customer == "" {
			rh = receiptHash("r-anon")
		}
		if _, _, created, err := s.SaveOrder(ctx, o, "shared-key", []byte("h-"+customer), rh); err != nil || !created {
			t.Fatalf("SaveOrder(%q) created %v err %v; want a new order", customer, created, err)
		}
		ids[customer] = o.ID
	}
	for customer, id := range ids {
		got, hash, err := s.OrderByKey(ctx, customer, "shared-key")
		if err != nil || got.ID != id || string(hash) != "h-"+customer || got.Customer != customer {
			t.Errorf("OrderByKey(%q) = %s %q %q, %v; want %s", customer, got.ID, got.Customer, hash, err, id)
		}
	}
}

// OrderFor answers only the customer or a receipt holder; everyone else gets
// ErrNotFound, as for an id that does not exist.
func TestOrderForOwnerOrReceipt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(dbtest.NewPool(t))
	mine := order(line(7, "Chassi", "chassis", 800000, 1))
	mine.Customer = "alice"
	guest := order(line(9, "Roda", "wheels", 50000, 4))
	if _, _, _, err := s.SaveOrder(ctx, mine, "k-alice-1", []byte("h"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.SaveOrder(ctx, guest, "k-guest-1", []byte("h"), receiptHash("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddReceipt(ctx, guest.ID, receiptHash("second")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		id       string
		customer string
		receipt  []byte
		found    bool
	}{
		{"owner", mine.ID, "alice", nil, true},
		{"other customer", mine.ID, "bob", nil, false},
		{"anonymous", mine.ID, "", nil, false},
		{"owner's id with a receipt of another order", mine.ID, "", receiptHash("first"), false},
		{"guest, first receipt", guest.ID, "", receiptHash("first"), true},
		{"guest, receipt of a replay", guest.ID, "", receiptHash("second"), true},
		{"guest, wrong receipt", guest.ID, "", receiptHash("third"), false},
		{"guest order, no receipt", guest.ID, "", nil, false},
		{"guest order, a customer without receipt", guest.ID, "alice", nil, false},
		{"guest order, a customer with the receipt", guest.ID, "bob", receiptHash("first"), true},
		{"no such order", "00000000-0000-4000-8000-999999999999", "alice", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.OrderFor(ctx, tt.id, tt.customer, tt.receipt)
			switch {
			case tt.found && (err != nil || got.ID != tt.id):
				t.Errorf("OrderFor = %s, %v; want order %s", got.ID, err, tt.id)
			case !tt.found && !errors.Is(err, errs.NotFound):
				t.Errorf("OrderFor = %s, %v; want ErrNotFound", got.ID, err)
			}
		})
	}
}

// Orders pages through one customer's orders, newest first, with ties on
// created_at broken by id, and never shows another customer's.
func TestOrdersPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(dbtest.NewPool(t))
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var want []string // newest first
	for i, at := range []time.Duration{0, time.Minute, time.Minute, 2 * time.Minute, 3 * time.Minute} {
		o := order(line(7, "Chassi", "chassis", 800000, 1))
		o.Customer, o.CreatedAt = "alice", base.Add(at)
		if _, _, _, err := s.SaveOrder(ctx, o, "page-key-"+string(rune('a'+i)), []byte("h"), nil); err != nil {
			t.Fatal(err)
		}
		other := order(line(7, "Chassi", "chassis", 800000, 1))
		other.Customer, other.CreatedAt = "bob", base.Add(at)
		if _, _, _, err := s.SaveOrder(ctx, other, "page-key-"+string(rune('a'+i)), []byte("h"), nil); err != nil {
			t.Fatal(err)
		}
		want = append([]string{o.ID}, want...)
	}
	// ids grow with creation, so of the two created at base+1m the later
	// id is the newer under (created_at, id) DESC: want is already in order.
	var got []string
	var after *pricing.Cursor
	for page := 0; page < 10; page++ {
		orders, err := s.Orders(ctx, "alice", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range orders {
			if o.Customer != "alice" || len(o.Quote.Lines) != 1 {
				t.Fatalf("page %d: order %+v is not one of alice's with its line", page, o)
			}
			got = append(got, o.ID)
		}
		if len(orders) < 2 {
			break
		}
		last := orders[len(orders)-1]
		after = &pricing.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if len(got) != len(want) {
		t.Fatalf("paged %d orders %v; want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %d is %s; want %s (all: %v, want %v)", i, got[i], want[i], got, want)
		}
	}
	if orders, err := s.Orders(ctx, "carol", nil, 10); err != nil || len(orders) != 0 {
		t.Errorf("Orders(carol) = %d orders, %v; want none", len(orders), err)
	}
}
