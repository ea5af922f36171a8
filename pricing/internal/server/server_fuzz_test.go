package server

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/shared/errs"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
	"github.com/carbuild/carbuild/shared/mdkey"
)

// The fuzz tests decode arbitrary protobuf wire bytes into each request
// message (what a hostile gRPC client, or the gateway's JSON decoding, can
// hand the adapters) and drive the real adapters and pricing.Service over
// the seed catalog held in memory and an in-memory order store. Whatever
// the input, the answer is a consistent quote/order or a client error
// (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS) —
// never a panic, never INTERNAL or UNKNOWN.

// seedParts are the seed's parts 1–20 (docs/architecture.md) (prices in centavos).
var seedParts = func() map[int64]quote.Part {
	prices := []int64{500000, 350000, 80000, 15000, 20000, 35000, 800000, 650000, 120000, 35000, 45000, 60000, 30000,
		750000, 700000, 90000, 28000, 40000, 50000, 200000}
	m := map[int64]quote.Part{}
	for i, p := range prices {
		id := int64(i + 1)
		cat := "other"
		if id == 1 || id == 7 || id == 14 {
			cat = quote.CategoryChassis
		}
		m[id] = quote.Part{ID: id, Name: fmt.Sprintf("part %d", id), Category: cat, UnitPrice: p, Currency: "BRL"}
	}
	return m
}()

type memCatalog struct{}

func (memCatalog) Parts(_ context.Context, ids []int64) (map[int64]quote.Part, error) {
	out := map[int64]quote.Part{}
	for _, id := range ids {
		p, ok := seedParts[id]
		if !ok {
			return nil, errs.New(errs.NotFound, "part %d not found", id)
		}
		out[id] = p
	}
	return out, nil
}

type memOrder struct {
	o        pricing.Order
	hash     []byte
	receipts map[string]bool
}

// memStore keeps orders in memory with the PostgreSQL store's rules: keys
// are per customer, an order is found only by its customer or a receipt.
type memStore struct {
	mu    sync.Mutex
	byKey map[string]*memOrder
	byID  map[string]*memOrder
}

func newMemStore() *memStore {
	return &memStore{byKey: map[string]*memOrder{}, byID: map[string]*memOrder{}}
}

func (s *memStore) OrderByKey(_ context.Context, customer, key string) (pricing.Order, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.byKey[customer+"\x00"+key]; ok {
		return o.o, o.hash, nil
	}
	return pricing.Order{}, nil, errs.New(errs.NotFound, "order not found")
}

func (s *memStore) SaveOrder(_ context.Context, o pricing.Order, key string, hash, receiptHash []byte) (pricing.Order, []byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := o.Customer + "\x00" + key
	if prev, ok := s.byKey[k]; ok {
		return prev.o, prev.hash, false, nil
	}
	if len(s.byKey) > 10000 { // bounded memory over long fuzz runs
		s.byKey, s.byID = map[string]*memOrder{}, map[string]*memOrder{}
	}
	m := &memOrder{o: o, hash: hash, receipts: map[string]bool{}}
	if receiptHash != nil {
		m.receipts[string(receiptHash)] = true
	}
	s.byKey[k], s.byID[o.ID] = m, m
	return o, hash, true, nil
}

func (s *memStore) AddReceipt(_ context.Context, id string, receiptHash []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.byID[id]; ok {
		o.receipts[string(receiptHash)] = true
	}
	return nil
}

func (s *memStore) OrderFor(_ context.Context, id, customer string, receiptHash []byte) (pricing.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.byID[id]; ok && (customer != "" && o.o.Customer == customer || o.receipts[string(receiptHash)]) {
		return o.o, nil
	}
	return pricing.Order{}, errs.New(errs.NotFound, "order not found")
}

func (s *memStore) Orders(context.Context, string, *pricing.Cursor, int) ([]pricing.Order, error) {
	return nil, nil // the fuzz targets do not list
}

// clientError fails the test unless err is nil or answers a status a client
// caused.
func clientError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	st := errs.Status(err) // what the server interceptor chain answers
	switch st.Code() {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists:
		if st.Message() == "" {
			t.Fatalf("%s: %s without a reason", what, st.Code())
		}
	default:
		t.Fatalf("%s: %s %q, want a client error", what, st.Code(), st.Message())
	}
}

func checkQuoteProto(t *testing.T, what string, lines []*pricingv1.QuoteLine, sub, ship, total *moneyv1.Money) {
	t.Helper()
	var sum int64
	for _, l := range lines {
		if l.GetQuantity() < 1 || l.GetQuantity() > quote.MaxQuantity || l.GetLineTotal().GetMinorUnits() != l.GetUnitPrice().GetMinorUnits()*int64(l.GetQuantity()) {
			t.Fatalf("%s: bad line %v", what, l)
		}
		sum += l.GetLineTotal().GetMinorUnits()
	}
	if sum != sub.GetMinorUnits() || total.GetMinorUnits() != sub.GetMinorUnits()+ship.GetMinorUnits() || total.GetCurrencyCode() != "BRL" {
		t.Fatalf("%s: lines %d, subtotal %v, shipping %v, total %v", what, sum, sub, ship, total)
	}
}

func seedV1(f *testing.F) {
	add := func(m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
	}
	items := []*pricingv1.LineItem{{PartId: "8", Quantity: 1}, {PartId: "11", Quantity: 2}}
	add(&pricingv1.CreateQuoteRequest{Items: items})
	add(&pricingv1.PlaceOrderRequest{IdempotencyKey: "fuzz-key-0001", Items: items, ExpectedTotal: &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: 744500}})
	add(&pricingv1.PlaceOrderRequest{IdempotencyKey: "fuzz-key-0001", Items: items[:1], ExpectedTotal: &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: 652000}})
	add(&pricingv1.CreateQuoteRequest{Items: []*pricingv1.LineItem{{PartId: "7", Quantity: 2}}})
	add(&pricingv1.CreateQuoteRequest{Items: []*pricingv1.LineItem{{PartId: "-1", Quantity: -5}, {PartId: "99", Quantity: 1}}})
	add(&pricingv1.PlaceOrderRequest{IdempotencyKey: "k", ExpectedTotal: &moneyv1.Money{CurrencyCode: "USD", MinorUnits: math.MinInt64}})
	add(&pricingv1.GetOrderRequest{OrderId: "6c1f3a2e-0000-4000-8000-000000000001"})
	f.Add([]byte{0xff, 0xff}, "6c1f3a2e-0000-4000-8000-00000000000Z")
}

// FuzzV1 drives carbuild.pricing.v1.PricingService.
func FuzzV1(f *testing.F) {
	seedV1(f)
	svc := NewV1(pricing.NewService(memCatalog{}, newMemStore(), nil))
	f.Fuzz(func(t *testing.T, wire []byte, orderID string) {
		ctx := context.Background()
		var cq pricingv1.CreateQuoteRequest
		if proto.Unmarshal(wire, &cq) == nil {
			q, err := svc.CreateQuote(ctx, &cq)
			clientError(t, "CreateQuote", err)
			if err == nil {
				checkQuoteProto(t, "CreateQuote", q.GetLines(), q.GetSubtotal(), q.GetShipping(), q.GetTotal())
			}
		}
		var po pricingv1.PlaceOrderRequest
		if proto.Unmarshal(wire, &po) == nil {
			o, err := svc.PlaceOrder(ctx, &po)
			clientError(t, "PlaceOrder", err)
			if err == nil {
				checkQuoteProto(t, "PlaceOrder", o.GetLines(), o.GetSubtotal(), o.GetShipping(), o.GetTotal())
				// Anonymous: the order is read back with its receipt, which
				// only the answer to PlaceOrder carries.
				rctx := metadata.NewIncomingContext(ctx, metadata.Pairs(mdkey.OrderReceipt, o.GetReceiptToken()))
				got, err := svc.GetOrder(rctx, &pricingv1.GetOrderRequest{OrderId: o.GetId()})
				want := proto.CloneOf(o)
				want.ReceiptToken = ""
				if o.GetReceiptToken() == "" || err != nil || !proto.Equal(got, want) {
					t.Fatalf("GetOrder(%s) = %v, %v; want the placed order", o.GetId(), got, err)
				}
			}
		}
		var g pricingv1.GetOrderRequest
		if proto.Unmarshal(wire, &g) == nil {
			_, err := svc.GetOrder(ctx, &g)
			clientError(t, "GetOrder", err)
		}
		_, err := svc.GetOrder(ctx, &pricingv1.GetOrderRequest{OrderId: orderID})
		clientError(t, "GetOrder(string)", err)
	})
}

// FuzzCompat drives the seed-compatible pricing.OrcamentoService, with the
// Idempotency-Key metadata the gateway forwards.
func FuzzCompat(f *testing.F) {
	add := func(m proto.Message, key string) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, key)
	}
	itens := []*pricingpb.Item{{Peca: &commonpb.Peca{Id: "7", Nome: "Chassi", Valor: 1}, Quantidade: 1}}
	add(&pricingpb.OrcamentoRequest{Itens: itens}, "")
	add(&pricingpb.CompraRequest{Itens: itens, ValorTotal: 8020}, "")
	add(&pricingpb.CompraRequest{Itens: itens, ValorTotal: 8020}, "compat-key-0001")
	add(&pricingpb.CompraRequest{Itens: itens, ValorTotal: math.NaN()}, "compat-key-0002")
	add(&pricingpb.CompraRequest{Itens: []*pricingpb.Item{{Quantidade: 1}}, ValorTotal: 1}, "x")
	add(&pricingpb.OrcamentoRequest{Itens: []*pricingpb.Item{{Peca: &commonpb.Peca{Id: "1e3"}, Quantidade: math.MaxInt32}}}, "")
	svc := NewCompat(pricing.NewService(memCatalog{}, newMemStore(), nil))
	f.Fuzz(func(t *testing.T, wire []byte, key string) {
		ctx := context.Background()
		if key != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(mdkey.IdempotencyKey, key))
		}
		var oq pricingpb.OrcamentoRequest
		if proto.Unmarshal(wire, &oq) == nil {
			p, err := svc.Calcular(ctx, &oq)
			clientError(t, "Calcular", err)
			if err == nil && math.Abs(p.GetTotal()-(p.GetPreco()+p.GetFrete())) > 0.005 {
				t.Fatalf("Calcular: %v", p)
			}
		}
		var cr pricingpb.CompraRequest
		if proto.Unmarshal(wire, &cr) == nil {
			r, err := svc.RealizarCompra(ctx, &cr)
			clientError(t, "RealizarCompra", err)
			if err == nil && (r.GetPedidoId() == "" || r.GetStatus() != StatusConfirmado || math.Abs(r.GetValorTotal()-(r.GetSubtotal()+r.GetFrete())) > 0.005) {
				t.Fatalf("RealizarCompra: %v", r)
			}
		}
	})
}
