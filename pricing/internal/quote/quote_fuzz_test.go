package quote

import (
	"errors"
	"math/big"
	"testing"

	"github.com/carbuild/carbuild/shared/errs"
)

// FuzzQuote decodes a basket from fuzz bytes (3 bytes per item: part id,
// quantity as a signed byte, and a split flag that repeats the item) over a
// catalog whose prices scale with unit, and checks the rules as invariants:
// Merge and Compute never panic, refuse only with errs.InvalidArgument, and an
// accepted quote has total = subtotal + shipping, subtotal = Σ line totals,
// line total = price × quantity, the shipping rule, at most one chassis,
// at most MaxLines lines of 1..MaxQuantity units.
func FuzzQuote(f *testing.F) {
	f.Add([]byte{7, 1, 0}, int64(1000))           // one chassis
	f.Add([]byte{7, 1, 0, 8, 2, 0}, int64(50000)) // free shipping
	f.Add([]byte{4, 1, 0}, int64(1))              // shipping floor
	f.Add([]byte{7, 1, 0, 14, 1, 0}, int64(100))  // two chassis
	f.Add([]byte{3, 0x80, 0}, int64(100))         // negative quantity
	f.Add([]byte{3, 60, 1, 3, 60, 0}, int64(100)) // merged above MaxQuantity
	f.Add([]byte{5, 99, 0}, int64(1)<<55)         // overflow
	f.Add([]byte{0, 1, 0}, int64(-5))             // part id 0, negative price
	f.Fuzz(func(t *testing.T, data []byte, unit int64) {
		var items []Item
		for i := 0; i+2 < len(data) && len(items) < 4*MaxLines; i += 3 {
			it := Item{PartID: int64(int8(data[i])), Quantity: int(int8(data[i+1]))}
			items = append(items, it)
			if data[i+2]&1 == 1 {
				items = append(items, it)
			}
		}
		merged, err := Merge(items)
		if err != nil {
			if !errors.Is(err, errs.InvalidArgument) {
				t.Fatalf("Merge: error %v does not wrap errs.InvalidArgument", err)
			}
			return
		}
		if len(merged) > MaxLines {
			t.Fatalf("Merge accepted %d lines", len(merged))
		}
		seen := map[int64]bool{}
		for _, it := range merged {
			if it.PartID <= 0 || it.Quantity < 1 || it.Quantity > MaxQuantity || seen[it.PartID] {
				t.Fatalf("Merge accepted %+v", it)
			}
			seen[it.PartID] = true
		}
		// Every part id p costs p × unit; every seventh part is a chassis.
		parts := map[int64]Part{}
		for _, it := range merged {
			p := Part{ID: it.PartID, UnitPrice: it.PartID * unit, Currency: "BRL"}
			if it.PartID%7 == 0 {
				p.Category = CategoryChassis
			}
			parts[it.PartID] = p
		}
		q, err := Compute(merged, parts)
		if err != nil {
			if !errors.Is(err, errs.InvalidArgument) {
				t.Fatalf("Compute: error %v does not wrap errs.InvalidArgument", err)
			}
			return
		}
		checkQuote(t, merged, parts, q)
	})
}

func checkQuote(t *testing.T, items []Item, parts map[int64]Part, q Quote) {
	t.Helper()
	if len(q.Lines) != len(items) {
		t.Fatalf("%d lines for %d items", len(q.Lines), len(items))
	}
	sum, chassis, units := new(big.Int), 0, int64(0)
	for i, l := range q.Lines {
		p := parts[items[i].PartID]
		want := new(big.Int).Mul(big.NewInt(p.UnitPrice), big.NewInt(int64(items[i].Quantity)))
		if l.Part.ID != p.ID || l.Quantity != items[i].Quantity || big.NewInt(l.LineTotal).Cmp(want) != 0 {
			t.Fatalf("line %d: %+v, want part %d × %d = %v", i, l, p.ID, items[i].Quantity, want)
		}
		if l.LineTotal < 0 {
			t.Fatalf("line %d: negative total %d", i, l.LineTotal)
		}
		sum.Add(sum, want)
		if p.Category == CategoryChassis {
			chassis += l.Quantity
		}
		units += int64(l.Quantity)
	}
	if big.NewInt(q.Subtotal).Cmp(sum) != 0 {
		t.Fatalf("subtotal %d, Σ line totals %v", q.Subtotal, sum)
	}
	if chassis > MaxChassis {
		t.Fatalf("accepted %d chassis", chassis)
	}
	wantShip, wantFree := int64(0), false
	switch {
	case q.Subtotal > FreeShippingAbove:
		wantFree = true
	case units > 0:
		wantShip = max(units*ShippingPerUnit, MinShipping)
	}
	if q.Shipping != wantShip || q.FreeShipping != wantFree {
		t.Fatalf("subtotal %d, %d units: shipping %d free %v, want %d %v", q.Subtotal, units, q.Shipping, q.FreeShipping, wantShip, wantFree)
	}
	if q.Total != q.Subtotal+q.Shipping || q.Total < q.Subtotal {
		t.Fatalf("total %d != subtotal %d + shipping %d", q.Total, q.Subtotal, q.Shipping)
	}
}

// FuzzShipping checks the shipping rule on any subtotal and unit count.
func FuzzShipping(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(15000), int64(1))
	f.Add(FreeShippingAbove, int64(3))
	f.Add(FreeShippingAbove+1, int64(3))
	f.Fuzz(func(t *testing.T, subtotal, units int64) {
		if units < 0 || units > MaxLines*MaxQuantity {
			return // Compute never asks for more
		}
		charge, free := Shipping(subtotal, units)
		switch {
		case subtotal > FreeShippingAbove:
			if charge != 0 || !free {
				t.Fatalf("subtotal %d: shipping %d free %v, want free", subtotal, charge, free)
			}
		case units == 0:
			if charge != 0 || free {
				t.Fatalf("no units: shipping %d free %v", charge, free)
			}
		default:
			if free || charge < MinShipping || charge != max(units*ShippingPerUnit, MinShipping) {
				t.Fatalf("subtotal %d, %d units: shipping %d free %v", subtotal, units, charge, free)
			}
		}
	})
}
