package pbjson_test

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/carbuild/carbuild/gateway/internal/pbjson"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
	"github.com/carbuild/carbuild/shared/grpctest"
)

func newListParts() proto.Message { return &catalogv1.ListPartsResponse{} }
func newPecas() proto.Message     { return &catalogopb.PecasResponse{} }

// checkKept compares the marshaler on an answer kept as wire bytes
// (pbjson.KeepWire puts them in an empty message's unknown fields) with
// protojson on the message proto.Unmarshal makes of the same bytes: the
// same JSON, or an error when proto.Unmarshal fails.
func checkKept(t *testing.T, raw []byte, fresh func() proto.Message) {
	t.Helper()
	kept := fresh()
	kept.ProtoReflect().SetUnknown(raw)
	got, gotErr := pbjson.New(reference(false)).Marshal(kept)
	decoded := fresh()
	if err := proto.Unmarshal(raw, decoded); err != nil {
		if gotErr == nil {
			t.Fatalf("wire %x: proto.Unmarshal fails (%v), the marshaler wrote %s", raw, err, got)
		}
		return
	}
	want, wantErr := reference(false).Marshal(decoded)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("wire %x: error %v, protojson's %v", raw, gotErr, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("wire %x:\n got %s\nwant %s", raw, got, want)
	}
}

// The wire encoding, written by hand so that it can hold what proto.Marshal
// refuses (strings that are not UTF-8) and what other encoders may send:
// fields out of order, twice, of another wire type, unknown ones.
type wireField func([]byte) []byte

func str(num protowire.Number, s string) wireField {
	return func(b []byte) []byte {
		return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
	}
}

func varint(num protowire.Number, v uint64) wireField {
	return func(b []byte) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
}

func fixed64(num protowire.Number, v uint64) wireField {
	return func(b []byte) []byte {
		return protowire.AppendFixed64(protowire.AppendTag(b, num, protowire.Fixed64Type), v)
	}
}

func fixed32(num protowire.Number, v uint32) wireField {
	return func(b []byte) []byte {
		return protowire.AppendFixed32(protowire.AppendTag(b, num, protowire.Fixed32Type), v)
	}
}

func msg(num protowire.Number, fs ...wireField) wireField {
	return func(b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), wire(fs...))
	}
}

func wire(fs ...wireField) []byte {
	var b []byte
	for _, f := range fs {
		b = f(b)
	}
	return b
}

// The fields of a message as proto.Marshal writes them: zero values left out.
func moneyFields(m *moneyv1.Money) []wireField {
	var fs []wireField
	if m.CurrencyCode != "" {
		fs = append(fs, str(1, m.CurrencyCode))
	}
	if m.MinorUnits != 0 {
		fs = append(fs, varint(2, uint64(m.MinorUnits)))
	}
	return fs
}

func partFields(p *catalogv1.Part) []wireField {
	var fs []wireField
	for i, s := range []string{p.Id, p.CarId, p.Name} {
		if s != "" {
			fs = append(fs, str(protowire.Number(i+1), s))
		}
	}
	if p.Category != 0 {
		fs = append(fs, varint(4, uint64(int64(p.Category)))) // negative enums take ten bytes, as int32 varints do
	}
	if p.Price != nil {
		fs = append(fs, msg(5, moneyFields(p.Price)...))
	}
	return fs
}

func pecaFields(p *commonpb.Peca) []wireField {
	var fs []wireField
	if p.Id != "" {
		fs = append(fs, str(1, p.Id))
	}
	if p.Nome != "" {
		fs = append(fs, str(2, p.Nome))
	}
	if p.Valor != 0 || math.Signbit(p.Valor) {
		fs = append(fs, fixed64(3, math.Float64bits(p.Valor)))
	}
	return fs
}

// perturb changes fs as other encoders, or a broken peer, might: another
// order, an unknown field, a field twice, a known field of another wire
// type. Most messages are left as they are.
func perturb(r *rand.Rand, fs []wireField, known int) []wireField {
	if r.IntN(4) == 0 {
		r.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
	}
	if r.IntN(5) == 0 {
		num := protowire.Number(known + 1 + r.IntN(20))
		unknown := []wireField{varint(num, r.Uint64()), fixed32(num, r.Uint32()), fixed64(num, r.Uint64()), str(num, randString(r))}
		fs = append(fs, unknown[r.IntN(len(unknown))])
	}
	if len(fs) > 0 && r.IntN(20) == 0 {
		fs = append(fs, fs[r.IntN(len(fs))])
	}
	if r.IntN(30) == 0 {
		num := protowire.Number(1 + r.IntN(known))
		other := []wireField{varint(num, r.Uint64()), fixed32(num, r.Uint32()), fixed64(num, r.Uint64()), str(num, randString(r))}
		fs = append(fs, other[r.IntN(len(other))])
	}
	return fs
}

// TestKeptMatchesDecoded compares the answers read from the wire with
// protojson's on the decoded messages: the samples, edge cases written by
// hand, and many random messages (random strings, sometimes not UTF-8,
// unknown enum numbers, special doubles), some perturbed or cut short.
func TestKeptMatchesDecoded(t *testing.T) {
	for _, c := range []struct {
		name  string
		raw   []byte
		fresh func() proto.Message
	}{
		{"page", mustMarshal(t, &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{samplePart("7", "Chassi", 1, 800000), samplePart("10", "Farol", 2, 35000)}, NextPageToken: "djE6MTA"}), newListParts},
		{"pecas", mustMarshal(t, &catalogopb.PecasResponse{Pecas: floatPecas()}), newPecas},
		{"part without fields", wire(msg(1)), newListParts},
		{"price without fields", wire(msg(1, msg(5))), newListParts},
		{"peca without fields", wire(msg(1)), newPecas},
		{"only unknown fields", wire(varint(9, 1), str(10, "x")), newListParts},
		{"token twice", wire(str(2, "a"), str(2, "b")), newListParts},
		{"name twice, first not UTF-8", wire(msg(1, str(3, "\xff"), str(3, "ok"))), newListParts},
		{"price twice (merged)", wire(msg(1, msg(5, str(1, "BRL")), msg(5, varint(2, 7)))), newListParts},
		{"category by name", wire(msg(1, varint(4, 3))), newListParts},
		{"category without a name", wire(msg(1, varint(4, 999))), newListParts},
		{"category over 32 bits", wire(msg(1, varint(4, 1<<32+2))), newListParts},
		{"parts field as a varint", wire(varint(1, 5)), newListParts},
		{"valor as a varint", wire(msg(1, varint(3, 5))), newPecas},
		{"id not UTF-8", wire(msg(1, str(1, "a\xc3"))), newPecas},
		{"group in unknown field", []byte{0x1b, 0x08, 0x01, 0x1c}, newListParts},
		{"cut short", mustMarshal(t, &catalogopb.PecasResponse{Pecas: floatPecas()})[:7], newPecas},
		{"field number zero", []byte{0x00, 0x01}, newListParts},
		{"field number above the largest valid", []byte{0xa8, 0xa8, 0xa8, 0xa8, 0x30, 0xa8, 0xa8, 0x30}, newPecas}, // found by FuzzKept
		{"parts and pecas repeated, token once", wire(msg(1, str(1, "a")), str(2, "t"), msg(1, str(1, "b"))), newListParts},
	} {
		t.Run(c.name, func(t *testing.T) { checkKept(t, c.raw, c.fresh) })
	}

	r := rand.New(rand.NewPCG(3, 4))
	n := 5000
	if testing.Short() {
		n = 500
	}
	for range n {
		var fs []wireField
		fresh := newListParts
		if r.IntN(2) == 0 {
			for _, p := range randParts(r) {
				pf := partFields(p)
				if p.Price != nil && r.IntN(3) == 0 {
					pf = append(pf[:len(pf)-1], msg(5, perturb(r, moneyFields(p.Price), 2)...))
				}
				fs = append(fs, msg(1, perturb(r, pf, 5)...))
			}
			if tok := randString(r); tok != "" {
				fs = append(fs, str(2, tok))
			}
			fs = perturb(r, fs, 2)
		} else {
			fresh = newPecas
			for range r.IntN(5) {
				p := &commonpb.Peca{Id: randString(r), Nome: randString(r), Valor: randFloat(r)}
				fs = append(fs, msg(1, perturb(r, pecaFields(p), 3)...))
			}
			fs = perturb(r, fs, 1)
		}
		raw := wire(fs...)
		if len(raw) > 0 && r.IntN(30) == 0 {
			raw = raw[:r.IntN(len(raw))]
		}
		checkKept(t, raw, fresh)
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzKept(f *testing.F) {
	f.Add(mustMarshal(f, &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{samplePart("7", "Chassi", 1, 800000)}, NextPageToken: "t"}), false)
	f.Add(mustMarshal(f, &catalogopb.PecasResponse{Pecas: floatPecas()}), true)
	f.Add(wire(msg(1, str(3, "\xff"), str(3, "ok"), varint(4, 999), msg(5, varint(2, 1), str(1, "BRL")))), false)
	f.Fuzz(func(t *testing.T, raw []byte, pecas bool) {
		if pecas {
			checkKept(t, raw, newPecas)
		} else {
			checkKept(t, raw, newListParts)
		}
	})
}

// pecasServer answers GetPecas and ListParts with fixed messages.
type pecasServer struct {
	catalogopb.UnimplementedCatalogoServiceServer
	catalogv1.UnimplementedCatalogServiceServer
	pecas *catalogopb.PecasResponse
	page  *catalogv1.ListPartsResponse
	cars  *catalogv1.ListCarsResponse
}

func (s pecasServer) GetPecas(context.Context, *catalogopb.Carro) (*catalogopb.PecasResponse, error) {
	return s.pecas, nil
}

func (s pecasServer) ListParts(context.Context, *catalogv1.ListPartsRequest) (*catalogv1.ListPartsResponse, error) {
	return s.page, nil
}

func (s pecasServer) ListCars(context.Context, *catalogv1.ListCarsRequest) (*catalogv1.ListCarsResponse, error) {
	return s.cars, nil
}

// TestKeepWireOverGRPC calls a real gRPC server with KeepWire: the big
// answers arrive as the server's bytes and marshal as protojson writes the
// server's messages; an answer of another type is decoded as usual.
func TestKeepWireOverGRPC(t *testing.T) {
	srv := pecasServer{
		pecas: &catalogopb.PecasResponse{Pecas: floatPecas()},
		page:  &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{samplePart("7", "Chassi", 1, 800000)}, NextPageToken: "next"},
		cars:  &catalogv1.ListCarsResponse{Cars: []*catalogv1.Car{{Id: "civic", Name: "Civic", FirstYear: 2023, LastYear: 2023}}},
	}
	_, cc := grpctest.Serve(t, func(s *grpc.Server) {
		catalogopb.RegisterCatalogoServiceServer(s, srv)
		catalogv1.RegisterCatalogServiceServer(s, srv)
	})
	ctx := context.Background()
	m := pbjson.New(reference(false))

	pecas, err := catalogopb.NewCatalogoServiceClient(cc).GetPecas(ctx, &catalogopb.Carro{Modelo: "Civic"}, pbjson.KeepWire())
	if err != nil {
		t.Fatal(err)
	}
	page, err := catalogv1.NewCatalogServiceClient(cc).ListParts(ctx, &catalogv1.ListPartsRequest{CarId: "civic"}, pbjson.KeepWire())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got, sent proto.Message
	}{{pecas, srv.pecas}, {page, srv.page}} {
		if raw := c.got.ProtoReflect().GetUnknown(); !bytes.Equal(raw, mustMarshal(t, c.sent)) {
			t.Errorf("%T: kept %x, the server sent %x", c.got, raw, mustMarshal(t, c.sent))
		}
		got, err := m.Marshal(c.got)
		want, _ := reference(false).Marshal(c.sent)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%T: Marshal = %s, %v; want %s", c.got, got, err, want)
		}
	}

	cars, err := catalogv1.NewCatalogServiceClient(cc).ListCars(ctx, &catalogv1.ListCarsRequest{}, pbjson.KeepWire())
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(cars, srv.cars) || len(cars.ProtoReflect().GetUnknown()) > 0 {
		t.Errorf("ListCars with KeepWire = %v, want the decoded %v", cars, srv.cars)
	}
}
