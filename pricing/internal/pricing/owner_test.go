package pricing_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/carbuild/carbuild/migrations/dbtest"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/pricing/internal/store"
	"github.com/carbuild/carbuild/shared/errs"
)

func orderReq(customer, key string) pricing.PlaceOrderRequest {
	return pricing.PlaceOrderRequest{Customer: customer, IdempotencyKey: key,
		Items: []quote.Item{{PartID: 10, Quantity: 1}}, ExpectedTotal: 37000, Currency: "BRL"}
}

// An anonymous order gets a receipt; a replay gets another one; both read
// the order, nothing else does, and only hashes are stored.
func TestAnonymousOrderReceipts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := pricing.NewService(newCatalog(), store.New(pool), nil)

	first, _, err := svc.PlaceOrder(ctx, orderReq("", "guest-key-0001"))
	if err != nil {
		t.Fatal(err)
	}
	again, replayed, err := svc.PlaceOrder(ctx, orderReq("", "guest-key-0001"))
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("replay = %s replayed %v err %v; want order %s", again.ID, replayed, err, first.ID)
	}
	if len(first.ReceiptToken) < 43 || again.ReceiptToken == "" || again.ReceiptToken == first.ReceiptToken {
		t.Fatalf("receipts %q and %q; want two different 256-bit tokens", first.ReceiptToken, again.ReceiptToken)
	}
	for name, receipt := range map[string]string{"first receipt": first.ReceiptToken, "replay's receipt": again.ReceiptToken} {
		if got, err := svc.GetOrder(ctx, first.ID, "", receipt); err != nil || got.ID != first.ID || got.ReceiptToken != "" {
			t.Errorf("GetOrder with the %s = %s (receipt %q), %v; want the order, receipt not shown again", name, got.ID, got.ReceiptToken, err)
		}
	}
	for name, receipt := range map[string]string{"none": "", "wrong": strings.Repeat("A", 43), "too long": strings.Repeat("A", 500)} {
		if _, err := svc.GetOrder(ctx, first.ID, "", receipt); !errors.Is(err, errs.NotFound) {
			t.Errorf("GetOrder with receipt %s = %v; want ErrNotFound", name, err)
		}
	}
	if _, err := svc.GetOrder(ctx, first.ID, "alice", ""); !errors.Is(err, errs.NotFound) {
		t.Errorf("GetOrder by a customer without the receipt = %v; want ErrNotFound", err)
	}
	var hashes, plain int
	h := sha256.Sum256([]byte(first.ReceiptToken))
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE token_hash = $1), count(*) FILTER (WHERE token_hash = convert_to($2, 'UTF8'))
		FROM orders.order_receipts`, h[:], first.ReceiptToken).Scan(&hashes, &plain); err != nil {
		t.Fatal(err)
	}
	if hashes != 1 || plain != 0 {
		t.Errorf("order_receipts holds the hash %d times and the token %d times; want 1 and 0", hashes, plain)
	}

	// A different body under the same key is a conflict that names no order.
	other := orderReq("", "guest-key-0001")
	other.Items[0].Quantity = 2
	other.ExpectedTotal = 73000
	_, _, err = svc.PlaceOrder(ctx, other)
	if !errors.Is(err, errs.Conflict) || strings.Contains(err.Error(), first.ID) {
		t.Errorf("conflict = %v; want ErrConflict without the order id", err)
	}
}

// Customers own their orders: keys are per customer, a conflict never names
// another's order, GetOrder and ListOrders show only their own.
func TestOrdersBelongToTheirCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newService(t)

	a, _, err := svc.PlaceOrder(ctx, orderReq("alice", "same-key-0001"))
	if err != nil {
		t.Fatal(err)
	}
	// bob picks the same key with another body: his own new order, no 409.
	breq := orderReq("bob", "same-key-0001")
	breq.Items[0].Quantity, breq.ExpectedTotal = 2, 73000
	b, replayed, err := svc.PlaceOrder(ctx, breq)
	if err != nil || replayed || b.ID == a.ID {
		t.Fatalf("bob's order with alice's key = %s replayed %v err %v; want a new order of his own", b.ID, replayed, err)
	}
	if a.ReceiptToken != "" || b.ReceiptToken != "" {
		t.Errorf("customers' orders got receipts %q %q; want none (the token is their proof)", a.ReceiptToken, b.ReceiptToken)
	}
	if got, err := svc.GetOrder(ctx, a.ID, "alice", ""); err != nil || got.ID != a.ID || got.Customer != "alice" {
		t.Errorf("alice reads her order: %s %q, %v", got.ID, got.Customer, err)
	}
	for _, caller := range []string{"bob", ""} {
		if _, err := svc.GetOrder(ctx, a.ID, caller, ""); !errors.Is(err, errs.NotFound) {
			t.Errorf("GetOrder(alice's order) by %q = %v; want ErrNotFound", caller, err)
		}
	}

	for i := 2; i <= 5; i++ {
		if _, _, err := svc.PlaceOrder(ctx, orderReq("alice", "alice-key-000"+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	token := ""
	for page := 0; ; page++ {
		orders, next, err := svc.ListOrders(ctx, "alice", 2, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range orders {
			if o.Customer != "alice" {
				t.Fatalf("alice's list has an order of %q", o.Customer)
			}
			seen = append(seen, o.ID)
		}
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatal("ListOrders never ends")
		}
		token = next
	}
	if len(seen) != 5 || seen[len(seen)-1] != a.ID {
		t.Errorf("alice's orders = %v; want 5, the first one placed last", seen)
	}
	if orders, _, err := svc.ListOrders(ctx, "bob", 0, ""); err != nil || len(orders) != 1 || orders[0].ID != b.ID {
		t.Errorf("bob's orders = %v, %v; want only %s", orders, err, b.ID)
	}

	tests := []struct {
		name     string
		customer string
		size     int
		token    string
		want     error
	}{
		{"anonymous", "", 0, "", errs.Unauthenticated},
		{"page size too large", "alice", 101, "", errs.InvalidArgument},
		{"negative page size", "alice", -1, "", errs.InvalidArgument},
		{"forged page token", "alice", 0, "bm90LWEtY3Vyc29y", errs.InvalidArgument},
		{"page token not base64", "alice", 0, "%%%", errs.InvalidArgument},
	}
	for _, tt := range tests {
		if _, _, err := svc.ListOrders(ctx, tt.customer, tt.size, tt.token); !errors.Is(err, tt.want) {
			t.Errorf("%s: ListOrders = %v; want %v", tt.name, err, tt.want)
		}
	}
}

func TestRefuseAnonymousOrders(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	svc.RefuseAnonymousOrders()
	if _, _, err := svc.PlaceOrder(context.Background(), orderReq("", "guest-key-0002")); !errors.Is(err, errs.Unauthenticated) {
		t.Errorf("anonymous PlaceOrder = %v; want ErrUnauthenticated", err)
	}
	if _, _, err := svc.PlaceOrder(context.Background(), orderReq("alice", "alice-key-0002")); err != nil {
		t.Errorf("customer's PlaceOrder = %v; want an order", err)
	}
}
