package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/catalog/internal/store"
	"github.com/carbuild/carbuild/migrations/dbtest"
	"github.com/carbuild/carbuild/shared/errs"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestListCars(t *testing.T) {
	t.Parallel()
	s := store.New(dbtest.NewPool(t))
	got, err := s.ListCars(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []catalog.Car{
		{ID: "civic", Name: "Civic", FirstYear: 2023, LastYear: 2023},
		{ID: "corolla", Name: "Corolla", FirstYear: 2020, LastYear: 2020},
		{ID: "fusca", Name: "Fusca", FirstYear: 2014, LastYear: 2014},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListCars mismatch (-want +got):\n%s", diff)
	}
}

func TestFindCar(t *testing.T) {
	t.Parallel()
	s := store.New(dbtest.NewPool(t))
	tests := []struct {
		key     string
		want    string
		wantErr error
	}{
		{"civic", "civic", nil},
		{"Civic", "civic", nil},
		{"CIVIC", "civic", nil},
		{"fUsCa", "fusca", nil},
		{"corolla", "corolla", nil},
		{"gol", "", errs.NotFound},
		{"civic'; DROP TABLE catalog.cars; --", "", errs.NotFound},
		{"%", "", errs.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, err := s.FindCar(context.Background(), tt.key)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FindCar(%q) error = %v, want %v", tt.key, err, tt.wantErr)
			}
			if got.ID != tt.want {
				t.Errorf("FindCar(%q) = %q, want %q", tt.key, got.ID, tt.want)
			}
		})
	}
}

func TestListPartsAndGetParts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(dbtest.NewPool(t))

	parts, err := s.ListParts(ctx, "civic", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, p := range parts {
		ids = append(ids, p.ID)
	}
	if diff := cmp.Diff([]int64{7, 8, 9, 10, 11, 12, 13}, ids); diff != "" {
		t.Errorf("civic part ids (-want +got):\n%s", diff)
	}
	wantFirst := catalog.Part{ID: 7, CarID: "civic", Name: "Chassi", Category: catalog.CategoryChassis, Price: 800000, Currency: "BRL"}
	if diff := cmp.Diff(wantFirst, parts[0]); diff != "" {
		t.Errorf("first civic part (-want +got):\n%s", diff)
	}

	page, err := s.ListParts(ctx, "civic", 9, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].ID != 10 || page[1].ID != 11 {
		t.Errorf("ListParts(after 9, limit 2) = %+v, want parts 10 and 11", page)
	}

	got, err := s.GetParts(ctx, []int64{14, 1, 999})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("GetParts returned %d parts, want 2 (999 does not exist)", len(got))
	}

	// Both reads scan every column the same way (the scanner interns the
	// car, category and currency): the civic's parts by id equal its list.
	byID, err := s.GetParts(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(byID, func(a, b catalog.Part) int { return int(a.ID - b.ID) })
	if diff := cmp.Diff(parts, byID); diff != "" {
		t.Errorf("GetParts of the civic's ids differs from ListParts (-list +get):\n%s", diff)
	}
	categories := map[catalog.Category]bool{}
	for _, p := range parts {
		if !p.Category.Known() || p.Currency != "BRL" || p.CarID != "civic" || p.Name == "" {
			t.Errorf("part %+v: a column was not read back", p)
		}
		categories[p.Category] = true
	}
	if len(categories) < 5 {
		t.Errorf("the civic's parts have %d distinct categories, want the seed's 7", len(categories))
	}
}

// BenchmarkListParts reads a page of 20 parts (21 rows: one more tells
// whether a next page exists) of a car of 100, as the catalog does on a
// cache miss; allocations are the store's and pgx's.
func BenchmarkListParts(b *testing.B) {
	ctx := context.Background()
	pool := dbtest.NewPool(b)
	if _, err := pool.Exec(ctx, `
INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('bench', 'Bench', 2020, 2024);
INSERT INTO catalog.parts (car_id, name, category, price_minor)
SELECT 'bench', 'Part ' || n, 'engine', 1000 * n FROM generate_series(1, 100) AS n`); err != nil {
		b.Fatal(err)
	}
	s := store.New(pool)
	b.ReportAllocs()
	for b.Loop() {
		parts, err := s.ListParts(ctx, "bench", 0, 21)
		if err != nil || len(parts) != 21 {
			b.Fatalf("ListParts: %d parts, %v", len(parts), err)
		}
	}
}
