package pbjson

import (
	"math"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
)

// Answers kept as wire bytes. The catalog's answers to the big reads (a page
// of parts, /get-pecas) are decoded by gRPC into a Go struct per part and a
// string per field only for the gateway to write them as JSON at once: on a
// big catalog's cache misses that decoding cost the gateway more than the
// JSON itself (docs/performance.md). With KeepWire a call's answer stays the
// catalog's protobuf bytes, carried in the message's unknown fields, and the
// marshaler writes the JSON straight from them, field by field, with the
// same encoder as a decoded message. Whatever it does not read exactly as
// proto.Unmarshal would (a field twice, a known field of another wire type,
// a string that is not UTF-8, an enum number without a name) is decoded with
// proto.Unmarshal and marshaled as usual, so the answer, or the error, is the
// same either way.

// KeepWire is the call option that keeps a ListParts or GetPecas answer as
// the catalog's bytes; other answers are decoded as usual.
func KeepWire() grpc.CallOption { return grpc.ForceCodecV2(keepWire{}) }

// keepWire is gRPC's protobuf codec, except that it copies the answers the
// marshaler reads from the wire into their unknown fields instead of
// decoding them.
type keepWire struct{}

var protoCodec = encoding.GetCodecV2("proto")

func (keepWire) Name() string { return protoCodec.Name() }

func (keepWire) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (keepWire) Unmarshal(data mem.BufferSlice, v any) error {
	switch v.(type) {
	case *catalogv1.ListPartsResponse, *catalogopb.PecasResponse:
		m := v.(proto.Message)
		proto.Reset(m)
		m.ProtoReflect().SetUnknown(data.Materialize())
		return nil
	}
	return protoCodec.Unmarshal(data, v)
}

// keptKind says which answer the bytes of a KeepWire message are.
type keptKind int

const (
	notKept keptKind = iota
	keptParts
	keptPecas
)

// kept returns the wire bytes a KeepWire answer carries and which answer
// they are; notKept when v holds decoded fields. A message with unknown
// fields and no known ones reads the same either way: its unknown fields
// hold no known field, so from the wire it is empty too.
func kept(v any) ([]byte, keptKind) {
	switch x := v.(type) {
	case *catalogv1.ListPartsResponse:
		if x != nil && len(x.Parts) == 0 && x.NextPageToken == "" {
			if raw := x.ProtoReflect().GetUnknown(); len(raw) > 0 {
				return raw, keptParts
			}
		}
	case *catalogopb.PecasResponse:
		if x != nil && len(x.Pecas) == 0 {
			if raw := x.ProtoReflect().GetUnknown(); len(raw) > 0 {
				return raw, keptPecas
			}
		}
	}
	return nil, notKept
}

// marshalKept writes the JSON of a kept answer from its bytes, or decodes
// them (an error is the one gRPC gives an answer it cannot decode).
func (m *Marshaler) marshalKept(raw []byte, kind keptKind) ([]byte, error) {
	if m.encode {
		if out, ok := appendPooled(func(b []byte) ([]byte, bool) {
			if kind == keptPecas {
				return m.enc.wirePecas(b, raw)
			}
			return m.enc.wireListParts(b, raw)
		}); ok {
			return out, nil
		}
	}
	var fresh proto.Message = &catalogv1.ListPartsResponse{}
	if kind == keptPecas {
		fresh = &catalogopb.PecasResponse{}
	}
	if err := proto.Unmarshal(raw, fresh); err != nil {
		return nil, status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
	}
	return m.marshal(fresh) // not Marshal: what proto.Unmarshal left unknown is no wire to read again
}

// view is b as a string without a copy: the strings of a part live only
// while its JSON is appended, and raw outlives them.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// field is one field read from the wire: its number and wire type, a
// varint or fixed64 value in n, a length-delimited one in v.
type field struct {
	num protowire.Number
	typ protowire.Type
	n   uint64
	v   []byte
}

// next consumes the field at the start of raw.
func next(raw []byte) (f field, rest []byte, ok bool) {
	num, typ, l := protowire.ConsumeTag(raw)
	if l < 0 || num > protowire.MaxValidNumber { // ConsumeTag takes up to MaxInt32, proto.Unmarshal not
		return f, nil, false
	}
	raw = raw[l:]
	f.num, f.typ = num, typ
	switch typ {
	case protowire.VarintType:
		f.n, l = protowire.ConsumeVarint(raw)
	case protowire.Fixed64Type:
		f.n, l = protowire.ConsumeFixed64(raw)
	case protowire.BytesType:
		f.v, l = protowire.ConsumeBytes(raw)
	default:
		l = protowire.ConsumeFieldValue(num, typ, raw)
	}
	if l < 0 {
		return f, nil, false
	}
	return f, raw[l:], true
}

// eachKnown calls set for each field of raw numbered 1 to len(types) and
// skips the others (unknown fields). A known field must have the wire type
// types[number-1] and, unless its bit is in repeated, come once: a field
// read twice is left to proto.Unmarshal, whose merging rules then apply.
// It reports false on malformed input, on a field it leaves to
// proto.Unmarshal, or when set does.
func eachKnown(raw []byte, types []protowire.Type, repeated uint32, set func(field) bool) bool {
	var seen uint32
	for len(raw) > 0 {
		f, rest, ok := next(raw)
		if !ok {
			return false
		}
		raw = rest
		if int(f.num) > len(types) {
			continue
		}
		bit := uint32(1) << f.num
		if f.typ != types[f.num-1] || seen&bit&^repeated != 0 {
			return false
		}
		seen |= bit
		if !set(f) {
			return false
		}
	}
	return true
}

const (
	bytesT   = protowire.BytesType
	varintT  = protowire.VarintType
	fixed64T = protowire.Fixed64Type
)

// The wire types of the fields, by number, of the messages read.
var (
	listPartsTypes = []protowire.Type{bytesT, bytesT}                          // repeated Part parts, string next_page_token
	partTypes      = []protowire.Type{bytesT, bytesT, bytesT, varintT, bytesT} // id, car_id, name, enum category, Money price
	moneyTypes     = []protowire.Type{bytesT, varintT}                         // currency_code, int64 minor_units
	pecasTypes     = []protowire.Type{bytesT}                                  // repeated Peca pecas
	pecaTypes      = []protowire.Type{bytesT, bytesT, fixed64T}                // id, nome, double valor
)

// wireList appends the JSON array of a message's repeated field 1 (each
// element by elem) and hands its other known fields to other.
func (e encoder) wireList(b, raw []byte, types []protowire.Type, elem func([]byte, []byte) ([]byte, bool), other func(field)) ([]byte, bool) {
	b = append(b, '[')
	n := 0
	ok := eachKnown(raw, types, 1<<1, func(f field) bool {
		if f.num != 1 {
			other(f)
			return true
		}
		if n > 0 {
			b = e.comma(b)
		}
		n++
		var ok bool
		b, ok = elem(b, f.v)
		return ok
	})
	return append(b, ']'), ok
}

// wireListParts: GET /v1/cars/{car_id}/parts from ListPartsResponse bytes.
func (e encoder) wireListParts(b, raw []byte) ([]byte, bool) {
	var token []byte
	b = append(b, '{')
	b = name(b, "parts")
	b, ok1 := e.wireList(b, raw, listPartsTypes, e.wirePart, func(f field) { token = f.v })
	b = e.comma(b)
	b = name(b, "nextPageToken")
	b, ok2 := str(b, view(token))
	return append(b, '}'), ok1 && ok2
}

// wirePart reads a Part into a struct of views and writes it with the
// decoded message's encoder.
func (e encoder) wirePart(b, raw []byte) ([]byte, bool) {
	var p catalogv1.Part
	var price moneyv1.Money
	ok := eachKnown(raw, partTypes, 0, func(f field) bool {
		switch f.num {
		case 1:
			p.Id = view(f.v)
		case 2:
			p.CarId = view(f.v)
		case 3:
			p.Name = view(f.v)
		case 4:
			p.Category = catalogv1.PartCategory(int32(f.n))
		case 5:
			p.Price = &price
			return eachKnown(f.v, moneyTypes, 0, func(f field) bool {
				if f.num == 1 {
					price.CurrencyCode = view(f.v)
				} else {
					price.MinorUnits = int64(f.n)
				}
				return true
			})
		}
		return true
	})
	if !ok {
		return b, false
	}
	return e.part(b, &p)
}

// wirePecas: POST /get-pecas from PecasResponse bytes.
func (e encoder) wirePecas(b, raw []byte) ([]byte, bool) {
	b = append(b, '{')
	b = name(b, "pecas")
	b, ok := e.wireList(b, raw, pecasTypes, e.wirePeca, nil)
	return append(b, '}'), ok
}

// wirePeca reads a Peca.
func (e encoder) wirePeca(b, raw []byte) ([]byte, bool) {
	var p commonpb.Peca
	ok := eachKnown(raw, pecaTypes, 0, func(f field) bool {
		switch f.num {
		case 1:
			p.Id = view(f.v)
		case 2:
			p.Nome = view(f.v)
		case 3:
			p.Valor = math.Float64frombits(f.n)
		}
		return true
	})
	if !ok {
		return b, false
	}
	return e.peca(b, &p)
}
