// Package pbjson is the gateway's JSON marshaler for grpc-gateway: runtime.JSONPb
// (protojson) with a direct encoder for the hot answers (quotes, orders, the
// order list, /health, the catalog's cars and pages of parts, /get-pecas)
// and a direct decoder for the hot requests (POST /v1/quotes, POST
// /v1/orders). protojson walks every message through reflection; on the
// mixed journey that was the largest share of the gateway's own CPU after
// the network, and on a big catalog's cache misses encoding a page of parts
// was (docs/performance.md).
//
// The output is protojson's, byte for byte (the tests compare them on tables
// and on random messages), and anything the direct code does not handle
// exactly as protojson does — an error, a rare form — is handed to protojson:
// it stays the reference, the direct code is a shortcut for the common shapes.
//
// The catalog's big answers can also skip their protobuf decoding: see
// KeepWire (wire.go).
package pbjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	gatewayv1 "github.com/carbuild/carbuild/shared/gen/carbuild/gateway/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
)

// Marshaler is a runtime.Marshaler: pb (protojson) for every message, with
// the direct encoder and decoder in front of it for the hot ones.
type Marshaler struct {
	*runtime.JSONPb
	enc encoder
	// encode and decode are off when pb's options differ from the ones
	// the direct code reproduces, or the messages' layout is not the one
	// it was written for (Layout says what differs).
	encode, decode bool
}

// New returns pb with the direct paths in front. They reproduce protojson
// with EmitUnpopulated and otherwise default marshal options (any other
// option leaves marshaling to pb entirely); decoding honours every
// unmarshal option by handing protojson whatever it could depend on.
func New(pb *runtime.JSONPb) *Marshaler {
	m := &Marshaler{JSONPb: pb, enc: encoder{sep: commaSep()}}
	ok := Layout() == nil
	o := pb.MarshalOptions
	m.encode = ok && o.EmitUnpopulated && !o.Multiline && o.Indent == "" && !o.UseProtoNames &&
		!o.UseEnumNumbers && !o.EmitDefaultValues && o.Resolver == nil
	m.decode = ok
	return m
}

// commaSep finds what protojson writes after a comma in this binary.
func commaSep() string {
	b, err := protojson.Marshal(&moneyv1.Money{CurrencyCode: "X", MinorUnits: 1})
	if err == nil && bytes.Contains(b, []byte(", ")) {
		return ", "
	}
	return ","
}

// Marshal encodes v; the hot messages directly, anything else with protojson.
func (m *Marshaler) Marshal(v any) ([]byte, error) {
	if raw, kind := kept(v); kind != notKept {
		return m.marshalKept(raw, kind)
	}
	return m.marshal(v)
}

// marshal encodes a decoded message.
func (m *Marshaler) marshal(v any) ([]byte, error) {
	if m.encode {
		if b, ok := m.marshalDirect(v); ok {
			return b, nil
		}
	}
	return m.JSONPb.Marshal(v)
}

// scratch holds encoding buffers; an answer is built in one and copied out
// at its exact size.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooled keeps an unusually large answer's buffer out of the pool.
const maxPooled = 64 << 10

func (m *Marshaler) marshalDirect(v any) ([]byte, bool) {
	var app func(b []byte) ([]byte, bool)
	switch x := v.(type) {
	case *pricingv1.Quote:
		app = bind(x, m.enc.quote)
	case *pricingv1.Order:
		app = bind(x, m.enc.order)
	case *pricingv1.ListOrdersResponse:
		app = bind(x, m.enc.listOrders)
	case *gatewayv1.HealthResponse:
		app = bind(x, m.enc.health)
	case *catalogv1.ListPartsResponse:
		app = bind(x, m.enc.listParts)
	case *catalogv1.BatchGetPartsResponse:
		app = bind(x, m.enc.batchGetParts)
	case *catalogv1.ListCarsResponse:
		app = bind(x, m.enc.listCars)
	case *catalogopb.PecasResponse:
		app = bind(x, m.enc.pecas)
	}
	return appendPooled(app)
}

// appendPooled runs app on a pooled buffer and copies its answer out; a nil
// app declines.
func appendPooled(app func(b []byte) ([]byte, bool)) ([]byte, bool) {
	if app == nil {
		return nil, false
	}
	bp := scratch.Get().(*[]byte)
	b, ok := app((*bp)[:0])
	var out []byte
	if ok {
		out = bytes.Clone(b)
	}
	if cap(b) <= maxPooled {
		*bp = b[:0]
		scratch.Put(bp)
	}
	return out, ok
}

// bind returns the append of message x by enc; nil for a nil message,
// which protojson answers itself.
func bind[T any](x *T, enc func([]byte, *T) ([]byte, bool)) func([]byte) ([]byte, bool) {
	if x == nil {
		return nil
	}
	return func(b []byte) ([]byte, bool) { return enc(b, x) }
}

// Unmarshal decodes data into v.
func (m *Marshaler) Unmarshal(data []byte, v any) error {
	if m.decode && decodeDirect(data, v) {
		return nil
	}
	return m.JSONPb.Unmarshal(data, v)
}

// NewDecoder returns a decoder reading r.
func (m *Marshaler) NewDecoder(r io.Reader) runtime.Decoder {
	if !m.decode {
		return m.JSONPb.NewDecoder(r)
	}
	return decoder{m: m, r: r}
}

// decoder decodes a hot request from the whole body; for any other message,
// or a body the direct decoder leaves to protojson, it is grpc-gateway's
// decoder over the very same bytes (and the same read error, if reading
// failed), so what it accepts, refuses and answers is unchanged.
type decoder struct {
	m *Marshaler
	r io.Reader
}

func (d decoder) Decode(v any) error {
	switch v.(type) {
	case *pricingv1.CreateQuoteRequest, *pricingv1.PlaceOrderRequest:
	default:
		return d.m.JSONPb.NewDecoder(d.r).Decode(v)
	}
	bp := scratch.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooled {
			scratch.Put(bp)
		}
	}()
	data, err := readAll(d.r, (*bp)[:0])
	*bp = data[:0]
	if err == nil && decodeDirect(data, v) {
		return nil
	}
	var r io.Reader = bytes.NewReader(data)
	if err != nil {
		r = io.MultiReader(r, errReader{err})
	}
	return d.m.JSONPb.NewDecoder(r).Decode(v)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// readAll appends r's content to b until EOF.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// decodeDirect fills v from data when v is a hot request and data is in the
// shape the direct decoder reads; otherwise v is left reset and it reports
// false.
func decodeDirect(data []byte, v any) bool {
	switch x := v.(type) {
	case *pricingv1.CreateQuoteRequest:
		if x == nil {
			return false
		}
		x.Reset()
		if createQuote(data, x) {
			return true
		}
		x.Reset()
	case *pricingv1.PlaceOrderRequest:
		if x == nil {
			return false
		}
		x.Reset()
		if placeOrder(data, x) {
			return true
		}
		x.Reset()
	}
	return false
}

// layouts are the fields, in order, that the direct encoder and decoder
// write and read for each message: JSON name, cardinality, kind.
var layouts = []struct {
	msg    proto.Message
	fields []string
}{
	{&moneyv1.Money{}, []string{"currencyCode optional string", "minorUnits optional int64"}},
	{&pricingv1.LineItem{}, []string{"partId optional string", "quantity optional int32"}},
	{&pricingv1.CreateQuoteRequest{}, []string{"items repeated message carbuild.pricing.v1.LineItem"}},
	{&pricingv1.PlaceOrderRequest{}, []string{"idempotencyKey optional string", "items repeated message carbuild.pricing.v1.LineItem", "expectedTotal optional message carbuild.money.v1.Money"}},
	{&pricingv1.QuoteLine{}, []string{"partId optional string", "name optional string", "quantity optional int32", "unitPrice optional message carbuild.money.v1.Money", "lineTotal optional message carbuild.money.v1.Money"}},
	{&pricingv1.Quote{}, []string{"lines repeated message carbuild.pricing.v1.QuoteLine", "subtotal optional message carbuild.money.v1.Money", "shipping optional message carbuild.money.v1.Money", "total optional message carbuild.money.v1.Money", "freeShipping optional bool"}},
	{&pricingv1.Order{}, []string{"id optional string", "status optional enum carbuild.pricing.v1.OrderStatus", "lines repeated message carbuild.pricing.v1.QuoteLine", "subtotal optional message carbuild.money.v1.Money", "shipping optional message carbuild.money.v1.Money", "total optional message carbuild.money.v1.Money", "createTime optional message google.protobuf.Timestamp", "receiptToken optional string"}},
	{&pricingv1.ListOrdersResponse{}, []string{"orders repeated message carbuild.pricing.v1.Order", "nextPageToken optional string"}},
	{&gatewayv1.HealthResponse{}, []string{"status optional string", "services repeated message carbuild.gateway.v1.HealthResponse.ServicesEntry"}},
	{&catalogv1.Part{}, []string{"id optional string", "carId optional string", "name optional string", "category optional enum carbuild.catalog.v1.PartCategory", "price optional message carbuild.money.v1.Money"}},
	{&catalogv1.ListPartsResponse{}, []string{"parts repeated message carbuild.catalog.v1.Part", "nextPageToken optional string"}},
	{&catalogv1.BatchGetPartsResponse{}, []string{"parts repeated message carbuild.catalog.v1.Part"}},
	{&catalogv1.Car{}, []string{"id optional string", "name optional string", "firstYear optional int32", "lastYear optional int32"}},
	{&catalogv1.ListCarsResponse{}, []string{"cars repeated message carbuild.catalog.v1.Car"}},
	{&commonpb.Peca{}, []string{"id optional string", "nome optional string", "valor optional double"}},
	{&catalogopb.PecasResponse{}, []string{"pecas repeated message common.Peca"}},
}

// Layout reports how the generated messages differ from what the direct
// code was written for (nil: not at all). A field added to one of them
// turns the direct paths off until this package learns it; the tests fail
// on it, so the change is not silently slower.
func Layout() error {
	var errs []error
	for _, l := range layouts {
		d := l.msg.ProtoReflect().Descriptor()
		var got []string
		fs := d.Fields()
		for i := range fs.Len() {
			got = append(got, describe(fs.Get(i)))
		}
		if d.Oneofs().Len() > 0 {
			got = append(got, "oneofs")
		}
		if strings.Join(got, "; ") != strings.Join(l.fields, "; ") {
			errs = append(errs, fmt.Errorf("%s: fields %q, pbjson knows %q", d.FullName(), got, l.fields))
		}
	}
	return errors.Join(errs...)
}

func describe(fd protoreflect.FieldDescriptor) string {
	s := fd.JSONName() + " " + fd.Cardinality().String() + " " + fd.Kind().String()
	switch {
	case fd.Message() != nil:
		s += " " + string(fd.Message().FullName())
	case fd.Enum() != nil:
		s += " " + string(fd.Enum().FullName())
	}
	if fd.HasPresence() && fd.Message() == nil {
		s += " with presence" // proto3 optional: unset is omitted, not zero
	}
	return s
}
