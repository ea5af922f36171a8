package pbjson

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	gatewayv1 "github.com/carbuild/carbuild/shared/gen/carbuild/gateway/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
)

// The equivalence tests (pbjson_test.go) pass even if everything went to
// protojson; these check that the shapes of the hot path take the direct
// code, so that the speed-up is not lost without notice.

func gatewayJSONPb() *runtime.JSONPb {
	return &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true}}
}

func brl(n int64) *moneyv1.Money { return &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: n} }

var (
	sampleQuote = &pricingv1.Quote{
		Lines: []*pricingv1.QuoteLine{
			{PartId: "7", Name: "Chassi", Quantity: 1, UnitPrice: brl(800000), LineTotal: brl(800000)},
			{PartId: "10", Name: "Farol LED", Quantity: 2, UnitPrice: brl(35000), LineTotal: brl(70000)},
		},
		Subtotal: brl(870000), Shipping: brl(4500), Total: brl(874500),
	}
	sampleOrder = &pricingv1.Order{
		Id: "0b6f7a9e-4f7e-4a43-9d7f-5b1c8d0f1e2a", Status: pricingv1.OrderStatus_ORDER_STATUS_CONFIRMED,
		Lines: sampleQuote.Lines, Subtotal: brl(870000), Shipping: brl(4500), Total: brl(874500),
		CreateTime: &timestamppb.Timestamp{Seconds: 1764255791, Nanos: 123456000}, ReceiptToken: "rcpt_0123456789abcdefABCDEF",
	}
	sampleHealth = &gatewayv1.HealthResponse{Status: "healthy", Services: map[string]string{"catalog": "SERVING", "pricing": "SERVING"}}
	// samplePage is a default page (20 parts) of the big catalog, as
	// gencatalog names them.
	samplePage = func() *catalogv1.ListPartsResponse {
		r := &catalogv1.ListPartsResponse{NextPageToken: "djE6MDAwMDAwMDAwMDA2MTIzNA"}
		for i := range 20 {
			r.Parts = append(r.Parts, &catalogv1.Part{Id: "p" + strconv.Itoa(61200+i), CarId: "model-0612-2019",
				Name: "Farol LED Modelo 612 " + strconv.Itoa(i), Category: catalogv1.PartCategory(1 + i%8), Price: brl(int64(35000 + 17*i))})
		}
		return r
	}()
	samplePecas = func() *catalogopb.PecasResponse {
		r := &catalogopb.PecasResponse{}
		for _, p := range samplePage.Parts {
			r.Pecas = append(r.Pecas, &commonpb.Peca{Id: p.Id, Nome: p.Name, Valor: float64(p.Price.MinorUnits) / 100})
		}
		return r
	}()

	quoteBody = `{"items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}]}`
	orderBody = `{"expectedTotal":{"currencyCode":"BRL","minorUnits":"874500"},"idempotencyKey":"bench-20261206T081658Z-12345","items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}]}`
)

func TestDirectPaths(t *testing.T) {
	m := New(gatewayJSONPb())
	if !m.encode || !m.decode {
		t.Fatalf("direct paths off: encode %v decode %v (Layout: %v)", m.encode, m.decode, Layout())
	}
	for _, v := range []any{sampleQuote, sampleOrder, sampleHealth, &pricingv1.ListOrdersResponse{Orders: []*pricingv1.Order{sampleOrder}}, &pricingv1.Quote{}, &pricingv1.Order{},
		samplePage, samplePecas, &catalogv1.BatchGetPartsResponse{Parts: samplePage.Parts}, &catalogv1.ListCarsResponse{Cars: []*catalogv1.Car{{Id: "civic", Name: "Civic", FirstYear: 2023, LastYear: 2023}}}} {
		if _, ok := m.marshalDirect(v); !ok {
			t.Errorf("%T %v went to protojson", v, v)
		}
	}
	for _, b := range []string{quoteBody, " {\n \"items\" : [ ] }\n", `{}`} {
		if !decodeDirect([]byte(b), &pricingv1.CreateQuoteRequest{}) {
			t.Errorf("quote body %q went to protojson", b)
		}
	}
	for _, b := range []string{orderBody, `{"idempotencyKey":"k-1","items":[{"partId":"13","quantity":3}],"expectedTotal":{"currencyCode":"BRL","minorUnits":94500}}`} {
		if !decodeDirect([]byte(b), &pricingv1.PlaceOrderRequest{}) {
			t.Errorf("order body %q went to protojson", b)
		}
	}
	// The catalog's big answers kept as its bytes are written from them.
	if _, ok := m.enc.wireListParts(nil, keptWire(t, samplePage)); !ok {
		t.Error("a page of parts kept as wire bytes went to proto.Unmarshal")
	}
	if _, ok := m.enc.wirePecas(nil, keptWire(t, samplePecas)); !ok {
		t.Error("a get-pecas answer kept as wire bytes went to proto.Unmarshal")
	}
	// Options the direct encoder does not reproduce turn it off.
	if New(&runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}}).encode {
		t.Error("UseProtoNames: direct encoder still on")
	}
}

// keptWire is m as KeepWire leaves it: its bytes in an empty message.
func keptWire(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keptAs[T any, P interface {
	*T
	proto.Message
}](t testing.TB, m P) P {
	k := P(new(T))
	k.ProtoReflect().SetUnknown(keptWire(t, m))
	return k
}

func TestDirectAllocs(t *testing.T) {
	m := New(gatewayJSONPb())
	for _, v := range []any{sampleOrder, samplePage, samplePecas, keptAs(t, samplePage), keptAs(t, samplePecas)} {
		if n := testing.AllocsPerRun(100, func() { _, _ = m.Marshal(v) }); n > 1 {
			t.Errorf("Marshal(%T): %v allocations, want 1 (the answer)", v, n)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	for _, tc := range []struct {
		name string
		v    any
	}{{"quote", sampleQuote}, {"order", sampleOrder}, {"health", sampleHealth}, {"parts", samplePage}, {"pecas", samplePecas}} {
		for _, impl := range []struct {
			name string
			m    runtime.Marshaler
		}{{"protojson", gatewayJSONPb()}, {"pbjson", New(gatewayJSONPb())}} {
			b.Run(tc.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := impl.m.Marshal(tc.v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, tc := range []struct {
		name  string
		body  string
		fresh func() any
	}{
		{"quote", quoteBody, func() any { return &pricingv1.CreateQuoteRequest{} }},
		{"order", orderBody, func() any { return &pricingv1.PlaceOrderRequest{} }},
	} {
		for _, impl := range []struct {
			name string
			m    runtime.Marshaler
		}{{"protojson", gatewayJSONPb()}, {"pbjson", New(gatewayJSONPb())}} {
			b.Run(tc.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := impl.m.NewDecoder(strings.NewReader(tc.body)).Decode(tc.fresh()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAnswer is what the gateway spends on a catalog answer between
// gRPC's buffer and the JSON: decoded into structs, then encoded (before
// KeepWire), against copied and written from the bytes (with it).
func BenchmarkAnswer(b *testing.B) {
	m := New(gatewayJSONPb())
	for _, tc := range []struct {
		name  string
		msg   proto.Message
		fresh func() proto.Message
	}{
		{"parts", samplePage, func() proto.Message { return &catalogv1.ListPartsResponse{} }},
		{"pecas", samplePecas, func() proto.Message { return &catalogopb.PecasResponse{} }},
		{"pecas100", pecas100, func() proto.Message { return &catalogopb.PecasResponse{} }},
	} {
		raw := keptWire(b, tc.msg)
		b.Run(tc.name+"/decoded", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v := tc.fresh()
				if err := proto.Unmarshal(raw, v); err != nil {
					b.Fatal(err)
				}
				if _, err := m.Marshal(v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/kept", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v := tc.fresh()
				v.ProtoReflect().SetUnknown(bytes.Clone(raw)) // gRPC's buffer, materialized
				if _, err := m.Marshal(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// pecas100 is a get-pecas answer of the big catalog: 100 parts of a model.
var pecas100 = func() *catalogopb.PecasResponse {
	r := &catalogopb.PecasResponse{}
	for i := range 100 {
		r.Pecas = append(r.Pecas, &commonpb.Peca{Id: "p" + strconv.Itoa(61200+i), Nome: "Farol LED Modelo 612 " + strconv.Itoa(i), Valor: float64(35000+17*i) / 100})
	}
	return r
}()

// TestCentsJSON compares the fast path for whole hundredths with strconv's
// shortest form (what float64JSON writes otherwise) on every cent up to
// 10^6, random cents up to the bound of 15 digits, both signs, and values
// near them that are not whole hundredths (declined, or equal).
func TestCentsJSON(t *testing.T) {
	check := func(f float64) {
		t.Helper()
		want := strconv.AppendFloat(nil, f, 'f', -1, 64)
		got, ok := centsJSON(nil, f)
		if ok && string(got) != string(want) {
			t.Fatalf("centsJSON(%v) = %s, strconv %s", f, got, want)
		}
	}
	for c := int64(-10_000); c <= 1_000_000; c++ {
		check(float64(c) / 100)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 200_000 {
		c := r.Int64N(1e15)
		if r.IntN(2) == 0 {
			c = -c
		}
		f := float64(c) / 100
		check(f)
		check(math.Nextafter(f, math.Inf(1)))
		check(math.Nextafter(f, math.Inf(-1)))
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1e13, 9.99999999999999e12, 1e15, 0.005, 0.015, math.NaN(), math.Inf(1)} {
		check(f)
	}
	if _, ok := centsJSON(nil, 350.5); !ok {
		t.Error("350.5 (a price in reais) took the slow path")
	}
}
