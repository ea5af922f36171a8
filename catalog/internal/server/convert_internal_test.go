package server

import (
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
	"github.com/carbuild/carbuild/shared/partid"
)

// TestConversions checks the batched conversions (one allocation for many
// messages and ids) against the message each part makes alone.
func TestConversions(t *testing.T) {
	for _, c := range []struct {
		name  string
		parts []catalog.Part
	}{
		{"none", nil},
		{"one", []catalog.Part{{ID: 7, CarID: "civic", Name: "Chassi", Category: catalog.CategoryChassis, Price: 800000, Currency: "BRL"}}},
		{"ids of every length", []catalog.Part{
			{ID: 1, CarID: "a", Name: "x", Price: 1, Currency: "BRL"},
			{ID: 10, CarID: "a", Name: "y", Category: catalog.CategoryEngine, Price: 0, Currency: "BRL"},
			{ID: 1234567, CarID: "b", Name: "Farol LED", Category: catalog.CategoryHeadlight, Price: 35050, Currency: "BRL"},
			{ID: math.MaxInt64, CarID: "b", Name: "", Price: -5, Currency: ""},
			{ID: 99, CarID: "c", Name: "Pneu", Category: catalog.CategoryWheels, Price: 1 << 40, Currency: "BRL"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := partsToProto(c.parts)
			pecas := pecasOf(c.parts)
			if len(got) != len(c.parts) || len(pecas.Pecas) != len(c.parts) {
				t.Fatalf("%d parts gave %d messages and %d pecas", len(c.parts), len(got), len(pecas.Pecas))
			}
			for i, p := range c.parts {
				want := &catalogv1.Part{Id: partid.Format(p.ID), CarId: p.CarID, Name: p.Name, Category: categoryToProto(p.Category),
					Price: &moneyv1.Money{CurrencyCode: p.Currency, MinorUnits: p.Price}}
				if !proto.Equal(got[i], want) || !proto.Equal(partToProto(p), want) {
					t.Errorf("part %d: partsToProto %v, partToProto %v, want %v", i, got[i], partToProto(p), want)
				}
				wantPeca := &commonpb.Peca{Id: partid.Format(p.ID), Nome: p.Name, Valor: float64(p.Price) / 100}
				if !proto.Equal(pecas.Pecas[i], wantPeca) {
					t.Errorf("part %d: peca %v, want %v", i, pecas.Pecas[i], wantPeca)
				}
			}
		})
	}
}

func TestConversionAllocs(t *testing.T) {
	parts := make([]catalog.Part, 100)
	for i := range parts {
		parts[i] = catalog.Part{ID: int64(1_000_000 + i), CarID: "gen-model-0001", Name: "Farol", Price: 35000, Currency: "BRL"}
	}
	// Each: the pointers, the messages, prices or the answer, and the ids'
	// bytes, string and slice; before, two or three per part.
	if n := testing.AllocsPerRun(50, func() { partsToProto(parts) }); n > 6 {
		t.Errorf("partsToProto of 100 parts: %v allocations, want at most 6", n)
	}
	if n := testing.AllocsPerRun(50, func() { pecasOf(parts) }); n > 6 {
		t.Errorf("pecasOf 100 parts: %v allocations, want at most 6", n)
	}
}
