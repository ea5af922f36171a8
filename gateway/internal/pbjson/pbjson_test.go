package pbjson_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carbuild/carbuild/gateway/internal/pbjson"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	gatewayv1 "github.com/carbuild/carbuild/shared/gen/carbuild/gateway/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
)

// reference is what the gateway used before: grpc-gateway's JSONPb, i.e.
// protojson, with the gateway's options (rest.muxOptions).
func reference(compat bool) *runtime.JSONPb {
	return &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: compat},
	}
}

func TestLayout(t *testing.T) {
	if err := pbjson.Layout(); err != nil {
		t.Fatalf("the generated messages changed; teach pbjson (encode.go, decode.go, layouts) the new fields: %v", err)
	}
}

func brl(n int64) *moneyv1.Money { return &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: n} }

func line(id, name string, q int32, unit int64) *pricingv1.QuoteLine {
	return &pricingv1.QuoteLine{PartId: id, Name: name, Quantity: q, UnitPrice: brl(unit), LineTotal: brl(unit * int64(q))}
}

// checkMarshal compares the marshaler's answer with protojson's: the same
// bytes, or the same error.
func checkMarshal(t *testing.T, v any) {
	t.Helper()
	ref := reference(false)
	want, wantErr := ref.Marshal(v)
	got, gotErr := pbjson.New(ref).Marshal(v)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("Marshal(%v): error %v, protojson's %v", v, gotErr, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal(%v):\n got %s\nwant %s", v, got, want)
	}
}

func TestMarshalMatchesProtojson(t *testing.T) {
	created := timestamppb.New(mustTime(t, "2026-11-27T15:03:11.123456789Z"))
	tests := []struct {
		name string
		v    any
	}{
		{"quote", &pricingv1.Quote{Lines: []*pricingv1.QuoteLine{line("7", "Chassi", 1, 800000), line("10", "Farol LED", 2, 35000)}, Subtotal: brl(870000), Shipping: brl(4500), Total: brl(874500)}},
		{"quote free shipping", &pricingv1.Quote{Lines: []*pricingv1.QuoteLine{line("8", "Motor 2.0 VTEC", 2, 650000)}, Subtotal: brl(1300000), Shipping: brl(0), Total: brl(1300000), FreeShipping: true}},
		{"empty quote", &pricingv1.Quote{}},
		{"quote with a nil line", &pricingv1.Quote{Lines: []*pricingv1.QuoteLine{nil, {}}}},
		{"order", &pricingv1.Order{Id: "0b6f7a9e-4f7e-4a43-9d7f-5b1c8d0f1e2a", Status: pricingv1.OrderStatus_ORDER_STATUS_CONFIRMED, Lines: []*pricingv1.QuoteLine{line("13", "Spoiler", 3, 30000)}, Subtotal: brl(90000), Shipping: brl(4500), Total: brl(94500), CreateTime: created, ReceiptToken: "rcpt_AbC-123"}},
		{"empty order", &pricingv1.Order{}},
		{"order, unknown status", &pricingv1.Order{Status: 7}},
		{"order, negative status", &pricingv1.Order{Status: -1}},
		{"order, timestamp without fraction", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: 1764255791}}},
		{"order, timestamp millis", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: 1764255791, Nanos: 120000000}}},
		{"order, timestamp micros", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: 1764255791, Nanos: 1000}}},
		{"order, timestamp 1 ns", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: 0, Nanos: 1}}},
		{"order, timestamp min", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: -62135596800}}},
		{"order, timestamp max", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: 253402300799, Nanos: 999999999}}},
		{"order, timestamp before min", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: -62135596801}}},
		{"order, timestamp after max", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: 253402300800}}},
		{"order, negative nanos", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: 1, Nanos: -1}}},
		{"order, nanos of a whole second", &pricingv1.Order{CreateTime: &timestamppb.Timestamp{Seconds: 1, Nanos: 1e9}}},
		{"escapes", &pricingv1.Order{Id: "a\"b\\c/d\b\f\n\r\t\x00\x01\x1f\x7f <&> \u2028\u2029 ünï 😀", ReceiptToken: "\u00e9"}},
		{"invalid UTF-8", &pricingv1.Quote{Lines: []*pricingv1.QuoteLine{{Name: "bad \xff name"}}}},
		{"invalid UTF-8 in currency", &pricingv1.Quote{Total: &moneyv1.Money{CurrencyCode: "\xc3"}}},
		{"money extremes", &pricingv1.Quote{Subtotal: brl(math.MinInt64), Shipping: brl(math.MaxInt64), Total: brl(-1)}},
		{"quantity extremes", &pricingv1.Quote{Lines: []*pricingv1.QuoteLine{{Quantity: math.MinInt32}, {Quantity: math.MaxInt32}}}},
		{"order list", &pricingv1.ListOrdersResponse{Orders: []*pricingv1.Order{{Id: "a", CreateTime: created}, {Id: "b"}, nil}, NextPageToken: "tok"}},
		{"empty order list", &pricingv1.ListOrdersResponse{}},
		{"health", &gatewayv1.HealthResponse{Status: "healthy", Services: map[string]string{"pricing": "SERVING", "catalog": "SERVING"}}},
		{"health, many backends", &gatewayv1.HealthResponse{Status: "unhealthy", Services: map[string]string{"z": "1", "a": "2", "m": "3", "b": "4", "y": "5", "c": "6", "x": "7", "d": "8", "w": "9", "e": "10", "": "empty", "Z": "upper", "é": "accent"}}},
		{"health, no backends", &gatewayv1.HealthResponse{}},
		{"health, invalid UTF-8 key", &gatewayv1.HealthResponse{Services: map[string]string{"\xff": "x"}}},
		{"nil quote", (*pricingv1.Quote)(nil)},
		{"nil order", (*pricingv1.Order)(nil)},
		{"cars", &catalogv1.ListCarsResponse{Cars: []*catalogv1.Car{{Id: "civic", Name: "Civic", FirstYear: 2023, LastYear: 2023}, nil, {}}}},
		{"no cars", &catalogv1.ListCarsResponse{}},
		{"car extremes", &catalogv1.ListCarsResponse{Cars: []*catalogv1.Car{{FirstYear: math.MinInt32, LastYear: math.MaxInt32}}}},
		{"page of parts", &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{samplePart("7", "Chassi", catalogv1.PartCategory_PART_CATEGORY_CHASSIS, 800000), samplePart("10", "Farol LED", catalogv1.PartCategory_PART_CATEGORY_HEADLIGHT, 35000)}, NextPageToken: "djE6MTA"}},
		{"last page of parts", &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{samplePart("7", "Chassi", catalogv1.PartCategory_PART_CATEGORY_CHASSIS, 800000)}}},
		{"no parts", &catalogv1.ListPartsResponse{}},
		{"parts, nil part and unset price", &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{nil, {Id: "x"}}}},
		{"part, unknown category", &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{{Category: 99}}}},
		{"part, negative category", &catalogv1.BatchGetPartsResponse{Parts: []*catalogv1.Part{{Category: -1}}}},
		{"part, invalid UTF-8 name", &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{{Name: "bad \xff"}}}},
		{"batch of parts", &catalogv1.BatchGetPartsResponse{Parts: []*catalogv1.Part{samplePart("8", "Motor 2.0 VTEC", catalogv1.PartCategory_PART_CATEGORY_ENGINE, 650000)}}},
		{"pecas", &catalogopb.PecasResponse{Pecas: []*commonpb.Peca{{Id: "7", Nome: "Chassi", Valor: 8000}, {Id: "10", Nome: "Farol LED", Valor: 350.5}, nil}}},
		{"no pecas", &catalogopb.PecasResponse{}},
		{"pecas, float forms", &catalogopb.PecasResponse{Pecas: floatPecas()}},
		{"pecas, invalid UTF-8", &catalogopb.PecasResponse{Pecas: []*commonpb.Peca{{Nome: "\xc3"}}}},
		{"another message (protojson's path)", &catalogv1.CatalogRevision{Revision: 42, Live: true}},
		{"not a message (protojson's path)", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkMarshal(t, tt.v) })
	}
}

func samplePart(id, name string, cat catalogv1.PartCategory, price int64) *catalogv1.Part {
	return &catalogv1.Part{Id: id, CarId: "civic-2023", Name: name, Category: cat, Price: brl(price)}
}

// floats are the doubles whose JSON form has a rule of its own in
// protojson: exponents at both ends, the 'e-0' trim, signs, zero, NaN and
// the infinities.
var floats = []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 350.5, 8000, 1e-6, 9.99e-7, 1e-7, 1.5e-300,
	5e-324, 1e20, 1e21, 123456789e15, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64,
	math.NaN(), math.Inf(1), math.Inf(-1), 1.0 / 3, 2.5e-10, 1e100}

func floatPecas() []*commonpb.Peca {
	ps := make([]*commonpb.Peca, len(floats))
	for i, f := range floats {
		ps[i] = &commonpb.Peca{Id: "f", Valor: f}
	}
	return ps
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestMarshalRandom compares the marshaler with protojson on many random
// messages: strings with escapes, any Unicode and sometimes invalid UTF-8,
// extreme numbers, unset and empty sub-messages, timestamps in and out of
// range, known and unknown statuses.
func TestMarshalRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 5000
	if testing.Short() {
		n = 500
	}
	for range n {
		switch r.IntN(7) {
		case 0:
			checkMarshal(t, randQuote(r))
		case 1:
			checkMarshal(t, randOrder(r))
		case 2:
			l := &pricingv1.ListOrdersResponse{NextPageToken: randString(r)}
			for range r.IntN(4) {
				l.Orders = append(l.Orders, randOrder(r))
			}
			checkMarshal(t, l)
		case 3:
			h := &gatewayv1.HealthResponse{Status: randString(r)}
			if r.IntN(4) > 0 {
				h.Services = map[string]string{}
				for range r.IntN(6) {
					h.Services[randString(r)] = randString(r)
				}
			}
			checkMarshal(t, h)
		case 4:
			l := &catalogv1.ListPartsResponse{Parts: randParts(r), NextPageToken: randString(r)}
			checkMarshal(t, l)
			checkMarshal(t, &catalogv1.BatchGetPartsResponse{Parts: l.Parts})
		case 5:
			p := &catalogopb.PecasResponse{}
			for range r.IntN(4) {
				p.Pecas = append(p.Pecas, &commonpb.Peca{Id: randString(r), Nome: randString(r), Valor: randFloat(r)})
			}
			checkMarshal(t, p)
		case 6:
			c := &catalogv1.ListCarsResponse{}
			for range r.IntN(4) {
				c.Cars = append(c.Cars, &catalogv1.Car{Id: randString(r), Name: randString(r), FirstYear: randInt32(r), LastYear: randInt32(r)})
			}
			checkMarshal(t, c)
		}
	}
}

func randParts(r *rand.Rand) []*catalogv1.Part {
	var ps []*catalogv1.Part
	for range r.IntN(5) {
		ps = append(ps, &catalogv1.Part{Id: randString(r), CarId: randString(r), Name: randString(r),
			Category: catalogv1.PartCategory(r.IntN(11) - 1), Price: randMoney(r)})
	}
	return ps
}

// randFloat draws from the special forms, from random bit patterns (any
// exponent) and from prices with two decimals.
func randFloat(r *rand.Rand) float64 {
	switch r.IntN(3) {
	case 0:
		return floats[r.IntN(len(floats))]
	case 1:
		return math.Float64frombits(r.Uint64())
	}
	return float64(r.IntN(10_000_000)) / 100
}

var pieces = []string{"", "a", "Chassi", "Farol LED", "Capô", "😀", "\"", "\\", "/", "\n", "\t", "\x00", "\x1f", "\x7f", "<", ">", "&", "\u2028", "\ufeff", "\ufffd", "日本", " "}

func randString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(5) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	if r.IntN(200) == 0 {
		b.WriteString("\xe2\x82") // truncated UTF-8
	}
	return b.String()
}

func randInt64(r *rand.Rand) int64 {
	switch r.IntN(6) {
	case 0:
		return 0
	case 1:
		return math.MaxInt64 - r.Int64N(3)
	case 2:
		return math.MinInt64 + r.Int64N(3)
	case 3:
		return -r.Int64N(1e9)
	}
	return r.Int64N(1e12)
}

func randInt32(r *rand.Rand) int32 {
	switch r.IntN(4) {
	case 0:
		return math.MaxInt32
	case 1:
		return math.MinInt32
	}
	return int32(r.IntN(200)) - 50
}

func randMoney(r *rand.Rand) *moneyv1.Money {
	switch r.IntN(5) {
	case 0:
		return nil
	case 1:
		return &moneyv1.Money{}
	}
	return &moneyv1.Money{CurrencyCode: randString(r), MinorUnits: randInt64(r)}
}

func randLines(r *rand.Rand) []*pricingv1.QuoteLine {
	var ls []*pricingv1.QuoteLine
	for range r.IntN(5) {
		if r.IntN(30) == 0 {
			ls = append(ls, nil)
			continue
		}
		ls = append(ls, &pricingv1.QuoteLine{PartId: randString(r), Name: randString(r), Quantity: randInt32(r), UnitPrice: randMoney(r), LineTotal: randMoney(r)})
	}
	return ls
}

func randQuote(r *rand.Rand) *pricingv1.Quote {
	return &pricingv1.Quote{Lines: randLines(r), Subtotal: randMoney(r), Shipping: randMoney(r), Total: randMoney(r), FreeShipping: r.IntN(2) == 0}
}

func randTimestamp(r *rand.Rand) *timestamppb.Timestamp {
	switch r.IntN(8) {
	case 0:
		return nil
	case 1:
		return &timestamppb.Timestamp{Seconds: -62135596800 - r.Int64N(2), Nanos: int32(r.IntN(2))}
	case 2:
		return &timestamppb.Timestamp{Seconds: 253402300799 + r.Int64N(2), Nanos: 999999999}
	case 3:
		return &timestamppb.Timestamp{Seconds: r.Int64N(4e9), Nanos: int32(r.IntN(3)) * 1e8}
	case 4:
		return &timestamppb.Timestamp{Seconds: r.Int64N(4e9) - 2e9, Nanos: int32(r.IntN(1e9+2)) - 1}
	}
	return &timestamppb.Timestamp{Seconds: 1.7e9 + r.Int64N(1e8), Nanos: int32(r.IntN(1e6)) * 1000}
}

func randOrder(r *rand.Rand) *pricingv1.Order {
	if r.IntN(40) == 0 {
		return nil
	}
	return &pricingv1.Order{
		Id: randString(r), Status: pricingv1.OrderStatus(r.IntN(3) - r.IntN(2)), Lines: randLines(r),
		Subtotal: randMoney(r), Shipping: randMoney(r), Total: randMoney(r), CreateTime: randTimestamp(r), ReceiptToken: randString(r),
	}
}

// checkDecode decodes body into a fresh message of want's type with the
// marshaler and with protojson (grpc-gateway's decoder), and compares the
// messages and errors.
func checkDecode(t *testing.T, compat bool, body string, fresh func() proto.Message) {
	t.Helper()
	ref := reference(compat)
	want := fresh()
	wantErr := ref.NewDecoder(strings.NewReader(body)).Decode(want)
	got := fresh()
	gotErr := pbjson.New(ref).NewDecoder(strings.NewReader(body)).Decode(got)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("Decode(%q): error %v, protojson's %v", body, gotErr, wantErr)
	}
	if wantErr == nil {
		if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
			t.Fatalf("Decode(%q): -protojson +pbjson\n%s", body, d)
		}
	}
	// Unmarshal (whole bodies) too.
	want, got = fresh(), fresh()
	wantErr = ref.Unmarshal([]byte(body), want)
	gotErr = pbjson.New(ref).Unmarshal([]byte(body), got)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("Unmarshal(%q): error %v, protojson's %v", body, gotErr, wantErr)
	}
	if wantErr == nil {
		if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
			t.Fatalf("Unmarshal(%q): -protojson +pbjson\n%s", body, d)
		}
	}
}

func newQuoteReq() proto.Message { return &pricingv1.CreateQuoteRequest{} }
func newOrderReq() proto.Message { return &pricingv1.PlaceOrderRequest{} }

// requestBodies are the decoder's table and the fuzz targets' seeds: the
// shapes clients send, and every lenient or wrong form protojson has an
// answer for.
var requestBodies = []string{
	`{"items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}]}`,
	`{"expectedTotal":{"currencyCode":"BRL","minorUnits":"874500"},"idempotencyKey":"bench-1-2","items":[{"partId":"7","quantity":1}]}`,
	`{"idempotencyKey":"k-12345678","items":[{"partId":"13","quantity":3}],"expectedTotal":{"currencyCode":"BRL","minorUnits":94500}}`,
	" \n\t{ \"items\" : [ { \"partId\" : \"7\" , \"quantity\" : 1 } ] } \r\n",
	`{}`, `{"items":[]}`, `{"items":[{}]}`, ``, `   `, `null`, `[]`, `"x"`, `1`, `{`, `}`, `{"items":[`,
	`{"items":null}`, `{"items":[null]}`, `{"items":[{"partId":null,"quantity":null}]}`,
	`{"items":[{"part_id":"7","quantity":1}]}`, `{"idempotency_key":"k","expected_total":{"currency_code":"BRL","minor_units":"1"}}`,
	`{"items":[{"partId":"7","quantity":"1"}]}`, `{"items":[{"partId":"7","quantity":1.0}]}`, `{"items":[{"partId":"7","quantity":1e0}]}`,
	`{"items":[{"partId":"7","quantity":1.5}]}`, `{"items":[{"partId":"7","quantity":-0}]}`, `{"items":[{"partId":"7","quantity":01}]}`,
	`{"items":[{"partId":"7","quantity":2147483647}]}`, `{"items":[{"partId":"7","quantity":2147483648}]}`, `{"items":[{"partId":"7","quantity":-2147483648}]}`, `{"items":[{"partId":"7","quantity":-2147483649}]}`,
	`{"items":[{"partId":7,"quantity":1}]}`, `{"items":[{"partId":"7","quantity":true}]}`, `{"items":{"partId":"7"}}`,
	`{"items":[{"partId":"7","partId":"8"}]}`, `{"items":[],"items":[]}`, `{"idempotencyKey":"a","idempotencyKey":"a"}`,
	`{"items":[{"partId":"7","quantity":1}],"unknown":1}`, `{"unknown":{"a":[1,2,{"b":null}]},"items":[{"partId":"1"}]}`, `{"items":[{"partId":"7","extra":"x"}]}`,
	`{"items":[{"partId":"7","quantity":1}]} trailing`, `{"items":[]}{"items":[]}`, `{"items":[{"partId":"7"},]}`, `{"items":[{"partId":"7",}]}`, `{,}`,
	`{"items":[{"partId":"\u0037"}]}`, `{"items":[{"partId":"a\"b"}]}`, `{"items":[{"partId":"Capô 😀"}]}`, "{\"items\":[{\"partId\":\"\xff\"}]}", "{\"items\":[{\"partId\":\"a\tb\"}]}",
	`{"\u0069tems":[]}`, `{"ITEMS":[]}`,
	`{"expectedTotal":{"currencyCode":"BRL","minorUnits":"-1"}}`, `{"expectedTotal":{"minorUnits":"9223372036854775807"}}`, `{"expectedTotal":{"minorUnits":"9223372036854775808"}}`,
	`{"expectedTotal":{"minorUnits":-9223372036854775808}}`, `{"expectedTotal":{"minorUnits":"1e3"}}`, `{"expectedTotal":{"minorUnits":" 1"}}`, `{"expectedTotal":{"minorUnits":"01"}}`,
	`{"expectedTotal":{"minorUnits":"-0"}}`, `{"expectedTotal":{"minorUnits":""}}`, `{"expectedTotal":{"minorUnits":"1"2}}`, `{"expectedTotal":{"minorUnits":123456789012345678}}`,
	`{"expectedTotal":{"minorUnits":1234567890123456789}}`, `{"expectedTotal":null}`, `{"expectedTotal":{}}`, `{"expectedTotal":{"currencyCode":"BRL","currencyCode":"USD"}}`,
	`{"expectedTotal":[]}`, `{"idempotencyKey":""}`, `{"idempotencyKey":1}`,
}

func TestDecodeMatchesProtojson(t *testing.T) {
	for _, compat := range []bool{false, true} {
		for _, body := range requestBodies {
			checkDecode(t, compat, body, newQuoteReq)
			checkDecode(t, compat, body, newOrderReq)
		}
	}
	// Other messages go to protojson as they are.
	checkDecode(t, false, `{"modelo":"Civic","ano":2023}`, func() proto.Message { return &catalogv1.ListPartsRequest{} })
}

// TestDecodeReadError: a body whose reading fails (e.g. past the size
// limit) gives grpc-gateway's decoder the same bytes and the same error.
func TestDecodeReadError(t *testing.T) {
	boom := errors.New("http: request body too large")
	for _, prefix := range []string{``, `{"items":[`, `{"items":[]}`, `{"items":[]}   `} {
		ref := reference(false)
		mk := func() io.Reader { return io.MultiReader(strings.NewReader(prefix), iotest.ErrReader(boom)) }
		want, got := &pricingv1.CreateQuoteRequest{}, &pricingv1.CreateQuoteRequest{}
		wantErr := ref.NewDecoder(mk()).Decode(want)
		gotErr := pbjson.New(ref).NewDecoder(mk()).Decode(got)
		if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			t.Errorf("body %q then a read error: error %v, grpc-gateway's %v", prefix, gotErr, wantErr)
		}
		if !proto.Equal(want, got) {
			t.Errorf("body %q then a read error: got %v, want %v", prefix, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range requestBodies {
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, body string, compat bool) {
		checkDecode(t, compat, body, newQuoteReq)
		checkDecode(t, compat, body, newOrderReq)
	})
}

func FuzzMarshal(f *testing.F) {
	f.Add("0b6f7a9e", "Chassi", "BRL", int32(1), int64(874500), int64(1764255791), int32(123456789), int32(1), "rcpt", true)
	f.Add("", "", "", int32(0), int64(0), int64(0), int32(0), int32(0), "", false)
	f.Add("a\"\\\n\x00\xff", "😀\u2028", "\xc3", int32(-1), int64(math.MinInt64), int64(253402300800), int32(-1), int32(9), "<&>", true)
	f.Fuzz(func(t *testing.T, id, name, currency string, qty int32, units, secs int64, nanos, status int32, token string, free bool) {
		m := &moneyv1.Money{CurrencyCode: currency, MinorUnits: units}
		l := &pricingv1.QuoteLine{PartId: id, Name: name, Quantity: qty, UnitPrice: m, LineTotal: m}
		checkMarshal(t, &pricingv1.Quote{Lines: []*pricingv1.QuoteLine{l, l}, Subtotal: m, Total: m, FreeShipping: free})
		o := &pricingv1.Order{Id: id, Status: pricingv1.OrderStatus(status), Lines: []*pricingv1.QuoteLine{l}, Subtotal: m, Shipping: m, CreateTime: &timestamppb.Timestamp{Seconds: secs, Nanos: nanos}, ReceiptToken: token}
		checkMarshal(t, o)
		checkMarshal(t, &pricingv1.ListOrdersResponse{Orders: []*pricingv1.Order{o, o}, NextPageToken: token})
		checkMarshal(t, &gatewayv1.HealthResponse{Status: name, Services: map[string]string{id: name, currency: token}})
		p := &catalogv1.Part{Id: id, CarId: token, Name: name, Category: catalogv1.PartCategory(status), Price: m}
		checkMarshal(t, &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{p, p}, NextPageToken: token})
		checkMarshal(t, &catalogopb.PecasResponse{Pecas: []*commonpb.Peca{{Id: id, Nome: name, Valor: math.Float64frombits(uint64(units))}}})
	})
}
