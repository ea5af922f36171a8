// Package quote holds Car Build's pricing rules as pure functions: subtotal,
// shipping, total and the basket limits (at most one chassis). Amounts are
// integer centavos. It does no I/O.
package quote

import (
	"fmt"
	"sort"

	"github.com/carbuild/carbuild/pricing/internal/money"
	"github.com/carbuild/carbuild/shared/errs"
)

// Rule constants, from the earlier system.
const (
	// ShippingPerUnit is charged per unit ordered (sum of quantities).
	ShippingPerUnit int64 = 1500 // R$ 15.00
	// MinShipping is the floor of a non-zero shipping charge.
	MinShipping int64 = 2000 // R$ 20.00
	// FreeShippingAbove: a subtotal strictly above this ships free.
	FreeShippingAbove int64 = 1_000_000 // R$ 10,000.00
	// MaxChassis is how many chassis one order may hold.
	MaxChassis = 1
	// MaxLines bounds the distinct parts in a basket.
	MaxLines = 50
	// MaxQuantity bounds the quantity of one line.
	MaxQuantity = 99
)

// Item asks for a quantity of a part.
type Item struct {
	PartID   int64
	Quantity int
}

// CategoryChassis is the catalog category the one-chassis rule counts.
const CategoryChassis = "chassis"

// Part is what the rules need to know of a catalog part.
type Part struct {
	ID        int64
	Name      string
	Category  string // catalog category, e.g. "chassis"
	UnitPrice int64  // centavos
	Currency  string
}

// Line is a priced line.
type Line struct {
	Part      Part
	Quantity  int
	LineTotal int64
}

// Quote is a priced basket.
type Quote struct {
	Lines        []Line
	Currency     string
	Subtotal     int64
	Shipping     int64
	Total        int64
	FreeShipping bool
}

// Merge validates the requested items and merges repeated parts into one
// line, keeping the order of first appearance. An empty basket is valid here
// (it quotes to zero); placing an order checks for emptiness itself.
func Merge(items []Item) ([]Item, error) {
	out := make([]Item, 0, len(items))
	index := make(map[int64]int, len(items))
	for _, it := range items {
		if it.PartID <= 0 {
			return nil, errs.New(errs.InvalidArgument, "part id must be positive, got %d", it.PartID)
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			return nil, errs.New(errs.InvalidArgument, "quantity of part %d must be between 1 and %d, got %d", it.PartID, MaxQuantity, it.Quantity)
		}
		if i, ok := index[it.PartID]; ok {
			out[i].Quantity += it.Quantity
			if out[i].Quantity > MaxQuantity {
				return nil, errs.New(errs.InvalidArgument, "quantity of part %d must be between 1 and %d, got %d", it.PartID, MaxQuantity, out[i].Quantity)
			}
			continue
		}
		index[it.PartID] = len(out)
		out = append(out, it)
	}
	if len(out) > MaxLines {
		return nil, errs.New(errs.InvalidArgument, "at most %d different parts per order, got %d", MaxLines, len(out))
	}
	return out, nil
}

// Compute prices merged items with the given parts (every item's part must be
// in parts). It applies the chassis limit and the shipping rule.
func Compute(items []Item, parts map[int64]Part) (Quote, error) {
	q := Quote{Currency: money.BRL, Lines: make([]Line, 0, len(items))}
	chassis, units := 0, int64(0)
	for i, it := range items {
		p, ok := parts[it.PartID]
		if !ok {
			return Quote{}, errs.New(errs.InvalidArgument, "part %d is not priced", it.PartID)
		}
		if i == 0 {
			q.Currency = p.Currency
		} else if p.Currency != q.Currency {
			return Quote{}, errs.New(errs.InvalidArgument, "parts in %s and %s cannot be ordered together", q.Currency, p.Currency)
		}
		if p.UnitPrice < 0 {
			return Quote{}, errs.New(errs.InvalidArgument, "part %d has a negative price", p.ID)
		}
		if p.Category == CategoryChassis {
			chassis += it.Quantity
		}
		lineTotal, err := money.Mul(p.UnitPrice, int64(it.Quantity))
		if err != nil {
			return Quote{}, errs.Wrap(errs.InvalidArgument, err, fmt.Sprintf("line total of part %d overflows", p.ID))
		}
		if q.Subtotal, err = money.Add(q.Subtotal, lineTotal); err != nil {
			return Quote{}, errs.Wrap(errs.InvalidArgument, err, "subtotal overflows")
		}
		units += int64(it.Quantity)
		q.Lines = append(q.Lines, Line{Part: p, Quantity: it.Quantity, LineTotal: lineTotal})
	}
	if chassis > MaxChassis {
		return Quote{}, errs.New(errs.InvalidArgument, "only one chassis per order, got %d", chassis)
	}
	q.Shipping, q.FreeShipping = Shipping(q.Subtotal, units)
	var err error
	if q.Total, err = money.Add(q.Subtotal, q.Shipping); err != nil {
		return Quote{}, errs.Wrap(errs.InvalidArgument, err, "total overflows")
	}
	return q, nil
}

// Shipping returns the shipping charge for a subtotal and a number of units:
// R$ 15.00 per unit, free when the subtotal is above R$ 10,000.00, and a
// non-zero charge is at least R$ 20.00.
func Shipping(subtotal, units int64) (charge int64, free bool) {
	if subtotal > FreeShippingAbove {
		return 0, true
	}
	charge = ShippingPerUnit * units
	if charge > 0 && charge < MinShipping {
		charge = MinShipping
	}
	return charge, false
}

// TotalsMatch reports whether a client's expected total is within one
// centavo of the recomputed one.
func TotalsMatch(expected, actual int64) bool {
	d := expected - actual
	return d >= -1 && d <= 1
}

// Canonical returns items sorted by part id: the form an order request is
// compared in when its idempotency key is reused.
func Canonical(items []Item) []Item {
	out := append([]Item(nil), items...)
	sort.Slice(out, func(i, j int) bool { return out[i].PartID < out[j].PartID })
	return out
}
