// Package shop holds what the load generators know about Car Build's domain:
// the seed catalog (migrations/00003_seed_catalog.sql) and the pricing rules
// of docs/architecture.md, so that every response can be checked against a value computed
// independently of the services.
package shop

import (
	"fmt"
	"slices"
	"strings"
)

// Part is a seed part. Price is in centavos.
type Part struct {
	ID       string
	CarID    string
	Name     string
	Category string // v1 enum name, e.g. "PART_CATEGORY_CHASSIS"
	Price    int64
}

// Car is a seed car.
type Car struct {
	ID        string
	Name      string
	FirstYear int
	LastYear  int
}

// Cars are the seed cars.
var Cars = []Car{
	{ID: "fusca", Name: "Fusca", FirstYear: 2014, LastYear: 2014},
	{ID: "civic", Name: "Civic", FirstYear: 2023, LastYear: 2023},
	{ID: "corolla", Name: "Corolla", FirstYear: 2020, LastYear: 2020},
}

// Parts are the seed parts with the earlier system's ids 1-20.
var Parts = []Part{
	{"1", "fusca", "Chassi", Chassis, 500000},
	{"2", "fusca", "Motor 1.6", "PART_CATEGORY_ENGINE", 350000},
	{"3", "fusca", "Rodas Aro 14", "PART_CATEGORY_WHEELS", 80000},
	{"4", "fusca", "Farol Dianteiro", "PART_CATEGORY_HEADLIGHT", 15000},
	{"5", "fusca", "Parachoque Traseiro", "PART_CATEGORY_BUMPER", 20000},
	{"6", "fusca", "Capô", "PART_CATEGORY_HOOD", 35000},
	{"7", "civic", "Chassi", Chassis, 800000},
	{"8", "civic", "Motor 2.0 VTEC", "PART_CATEGORY_ENGINE", 650000},
	{"9", "civic", "Rodas Aro 16", "PART_CATEGORY_WHEELS", 120000},
	{"10", "civic", "Farol LED", "PART_CATEGORY_HEADLIGHT", 35000},
	{"11", "civic", "Parachoque Esportivo", "PART_CATEGORY_BUMPER", 45000},
	{"12", "civic", "Capô Esportivo", "PART_CATEGORY_HOOD", 60000},
	{"13", "civic", "Spoiler", "PART_CATEGORY_SPOILER", 30000},
	{"14", "corolla", "Chassi", Chassis, 750000},
	{"15", "corolla", "Motor 1.8 Hybrid", "PART_CATEGORY_ENGINE", 700000},
	{"16", "corolla", "Rodas Aro 15", "PART_CATEGORY_WHEELS", 90000},
	{"17", "corolla", "Farol Xenon", "PART_CATEGORY_HEADLIGHT", 28000},
	{"18", "corolla", "Parachoque Híbrido", "PART_CATEGORY_BUMPER", 40000},
	{"19", "corolla", "Capô Aerodinâmico", "PART_CATEGORY_HOOD", 50000},
	{"20", "corolla", "Sistema Híbrido", "PART_CATEGORY_HYBRID_SYSTEM", 200000},
}

// Chassis is the category limited to one per basket.
const Chassis = "PART_CATEGORY_CHASSIS"

// Pricing rules (docs/architecture.md), in centavos.
const (
	ShippingPerUnit   = 1500    // R$ 15.00 per unit
	ShippingMinimum   = 2000    // a non-zero shipping below R$ 20.00 becomes R$ 20.00
	FreeShippingAbove = 1000000 // free when the subtotal exceeds R$ 10,000.00
)

// CarParts returns the seed parts of a car (by id or name, case-insensitively), in id order.
func CarParts(car string) []Part {
	var out []Part
	for _, c := range Cars {
		if strings.EqualFold(c.ID, car) || strings.EqualFold(c.Name, car) {
			for _, p := range Parts {
				if p.CarID == c.ID {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// CompatParts returns the seed parts of a car as the seed-compatible
// GetPecas (and POST /get-pecas) lists them: by name, as the earlier system's
// `ORDER BY nome` did. Byte order is that order for the seed's names: any two
// differ in an unaccented letter of the same case before any accent or case
// difference (the catalog sorts by a linguistic collation, see README).
func CompatParts(car string) []Part {
	out := CarParts(car)
	slices.SortFunc(out, func(a, b Part) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// PartByID returns a seed part.
func PartByID(id string) (Part, bool) {
	for _, p := range Parts {
		if p.ID == id {
			return p, true
		}
	}
	return Part{}, false
}

// Shipping is the shipping in centavos for a basket's subtotal and unit count.
func Shipping(subtotal int64, units int) int64 {
	if subtotal > FreeShippingAbove {
		return 0
	}
	s := int64(units) * ShippingPerUnit
	if s > 0 && s < ShippingMinimum {
		s = ShippingMinimum
	}
	return s
}

// Item is a basket line.
type Item struct {
	PartID   string
	Quantity int
}

// Totals are a basket's subtotal, shipping and total in centavos.
type Totals struct {
	Subtotal, Shipping, Total int64
}

// Price prices a basket of seed parts by the rules; it refuses an unknown
// part or more than one chassis, as the pricing service must.
func Price(items []Item) (Totals, error) {
	var t Totals
	units, chassis := 0, 0
	for _, it := range items {
		p, ok := PartByID(it.PartID)
		if !ok {
			return Totals{}, fmt.Errorf("unknown part %q", it.PartID)
		}
		if p.Category == Chassis {
			chassis += it.Quantity
		}
		t.Subtotal += p.Price * int64(it.Quantity)
		units += it.Quantity
	}
	if chassis > 1 {
		return Totals{}, fmt.Errorf("%d chassis in one basket", chassis)
	}
	t.Shipping = Shipping(t.Subtotal, units)
	t.Total = t.Subtotal + t.Shipping
	return t, nil
}
