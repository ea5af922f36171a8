package catalog_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/shared/errs"
)

func TestCheckCarID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id string
		ok bool
	}{
		{"gol", true},
		{"hb20-sport", true},
		{"a", true},
		{"2cv", true},
		{strings.Repeat("a", catalog.MaxCarIDLen), true},
		{strings.Repeat("a", catalog.MaxCarIDLen+1), false},
		{"", false},
		{"Gol", false},
		{"gol ", false},
		{" gol", false},
		{"-gol", false},
		{"gol-", false},
		{"gol--g", false},
		{"gol_g", false},
		{"gol/parts", false},
		{"gól", false},
		{"gol\x00", false},
		{"civic'; DROP TABLE catalog.cars; --", false},
	}
	for _, tt := range tests {
		err := catalog.CheckCarID(tt.id)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, errs.InvalidArgument)) {
			t.Errorf("CheckCarID(%q) = %v, want ok=%v (or ErrInvalid)", tt.id, err, tt.ok)
		}
	}
}

func TestCheckCar(t *testing.T) {
	t.Parallel()
	good := catalog.Car{ID: "gol", Name: "Gol", FirstYear: 2008, LastYear: 2023}
	with := func(f func(*catalog.Car)) catalog.Car {
		c := good
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		car     catalog.Car
		wantMsg string // "" is valid
	}{
		{"valid", good, ""},
		{"one year", with(func(c *catalog.Car) { c.FirstYear, c.LastYear = 2014, 2014 }), ""},
		{"accented name", with(func(c *catalog.Car) { c.Name = "Fusca Itamar Édition" }), ""},
		{"name of the limit", with(func(c *catalog.Car) { c.Name = strings.Repeat("x", catalog.MaxNameLength) }), ""},
		{"oldest year", with(func(c *catalog.Car) { c.FirstYear = catalog.MinYear }), ""},
		{"newest year", with(func(c *catalog.Car) { c.LastYear = catalog.MaxYear }), ""},
		{"empty name", with(func(c *catalog.Car) { c.Name = "" }), "car name must not be empty"},
		{"blank name", with(func(c *catalog.Car) { c.Name = " \t " }), "car name must not be empty"},
		{"padded name", with(func(c *catalog.Car) { c.Name = " Gol" }), "must not start or end with spaces"},
		{"long name", with(func(c *catalog.Car) { c.Name = strings.Repeat("x", catalog.MaxNameLength+1) }), "longer than 100 bytes"},
		{"NUL in name", with(func(c *catalog.Car) { c.Name = "G\x00l" }), "control characters"},
		{"newline in name", with(func(c *catalog.Car) { c.Name = "G\nl" }), "control characters"},
		{"invalid UTF-8", with(func(c *catalog.Car) { c.Name = "G\xffl" }), "UTF-8"},
		{"year 0", with(func(c *catalog.Car) { c.FirstYear = 0 }), "between 1886 and 2100, got 0"},
		{"before cars", with(func(c *catalog.Car) { c.FirstYear = catalog.MinYear - 1 }), "got 1885"},
		{"far future", with(func(c *catalog.Car) { c.LastYear = catalog.MaxYear + 1 }), "got 2101"},
		{"negative", with(func(c *catalog.Car) { c.LastYear = -2023 }), "got -2023"},
		{"years reversed", with(func(c *catalog.Car) { c.FirstYear, c.LastYear = 2023, 2008 }), "first_year 2023 is after last_year 2008"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, catalog.CheckCar(tt.car), tt.wantMsg)
		})
	}
}

func TestCheckPart(t *testing.T) {
	t.Parallel()
	good := catalog.Part{CarID: "gol", Name: "Farol", Category: catalog.CategoryHeadlight, Price: 15000, Currency: "BRL"}
	with := func(f func(*catalog.Part)) catalog.Part {
		p := good
		f(&p)
		return p
	}
	tests := []struct {
		name    string
		part    catalog.Part
		wantMsg string
	}{
		{"valid", good, ""},
		{"free", with(func(p *catalog.Part) { p.Price = 0 }), ""},
		{"most expensive", with(func(p *catalog.Part) { p.Price = catalog.MaxPrice }), ""},
		{"every category", with(func(p *catalog.Part) { p.Category = catalog.CategoryHybridSystem }), ""},
		{"negative price", with(func(p *catalog.Part) { p.Price = -1 }), "price must be between 0 and 1000000000000 minor units, got -1"},
		{"too expensive", with(func(p *catalog.Part) { p.Price = catalog.MaxPrice + 1 }), "got 1000000000001"},
		{"other currency", with(func(p *catalog.Part) { p.Currency = "USD" }), `price must be in BRL, got "USD"`},
		{"no currency", with(func(p *catalog.Part) { p.Currency = "" }), `price must be in BRL, got ""`},
		{"lowercase currency", with(func(p *catalog.Part) { p.Currency = "brl" }), `got "brl"`},
		{"unknown category", with(func(p *catalog.Part) { p.Category = "seat" }), "category must be one of"},
		{"no category", with(func(p *catalog.Part) { p.Category = "" }), "category must be one of"},
		{"category's case", with(func(p *catalog.Part) { p.Category = "Engine" }), "category must be one of"},
		{"empty name", with(func(p *catalog.Part) { p.Name = "" }), "part name must not be empty"},
		{"padded name", with(func(p *catalog.Part) { p.Name = "Farol " }), "must not start or end with spaces"},
		{"control in name", with(func(p *catalog.Part) { p.Name = "Far\u0085ol" }), "control characters"},
		{"long name", with(func(p *catalog.Part) { p.Name = strings.Repeat("é", 51) }), "longer than 100 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, catalog.CheckPart(tt.part), tt.wantMsg)
		})
	}
}

// checkErr: wantMsg "" wants no error; otherwise an ErrInvalid whose
// message contains wantMsg.
func checkErr(t *testing.T, err error, wantMsg string) {
	t.Helper()
	switch {
	case wantMsg == "" && err != nil:
		t.Errorf("got %v, want valid", err)
	case wantMsg != "" && (!errors.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), wantMsg)):
		t.Errorf("got %v, want ErrInvalid saying %q", err, wantMsg)
	}
}
