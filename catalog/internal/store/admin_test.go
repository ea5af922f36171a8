package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/catalog/internal/store"
	"github.com/carbuild/carbuild/migrations/dbtest"
	"github.com/carbuild/carbuild/shared/errs"
)

// auditRow is a row of catalog.audit, with before and after decoded.
type auditRow struct {
	Actor, Action, Entity, EntityID string
	Before, After                   map[string]any
}

// auditRows returns the audit rows of entity id, oldest first.
func auditRows(t *testing.T, pool *pgxpool.Pool, entity, id string) []auditRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT actor, action, entity, entity_id, before, after
		FROM catalog.audit WHERE entity = $1 AND entity_id = $2 ORDER BY id`, entity, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		var before, after []byte
		if err := rows.Scan(&r.Actor, &r.Action, &r.Entity, &r.EntityID, &before, &after); err != nil {
			t.Fatal(err)
		}
		if before != nil {
			if err := json.Unmarshal(before, &r.Before); err != nil {
				t.Fatal(err)
			}
		}
		if err := json.Unmarshal(after, &r.After); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAdminLifecycle creates a car and a part, changes them, retires them
// and checks after each step what the read side serves and the audit row
// written in the same transaction (who, before, after).
func TestAdminLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	s := store.New(pool)
	admin := catalog.NewAdmin(s)
	read := catalog.NewService(s)

	car, err := admin.CreateCar(ctx, "olga", catalog.Car{ID: "gol", Name: "Gol", FirstYear: 2008, LastYear: 2023})
	if err != nil {
		t.Fatal(err)
	}
	if car.Version != 1 || car.Retired {
		t.Errorf("created car = %+v, want version 1, not retired", car)
	}
	part, err := admin.CreatePart(ctx, "olga", catalog.Part{CarID: "gol", Name: "Farol", Category: catalog.CategoryHeadlight, Price: 15000, Currency: "BRL"})
	if err != nil {
		t.Fatal(err)
	}
	if part.ID <= 20 || part.Version != 1 {
		t.Errorf("created part = %+v, want a new id after the seed's, version 1", part)
	}
	pid := part.Part
	got, err := read.BatchGetParts(ctx, []string{formatID(part.ID)})
	if err != nil || len(got) != 1 || got[0] != pid {
		t.Errorf("read side after create = %v, %v; want %+v", got, err, pid)
	}

	price := int64(17990)
	changed, err := admin.UpdatePart(ctx, "pedro", formatID(part.ID), catalog.PartChange{Price: &price, Currency: ptr("BRL")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Price != price || changed.Version != 2 {
		t.Errorf("changed part = %+v, want price %d at version 2", changed, price)
	}
	// A change based on version 1 is refused now: someone changed it since.
	_, err = admin.UpdatePart(ctx, "olga", formatID(part.ID), catalog.PartChange{Name: ptr("Farol LED")}, 1)
	if !errors.Is(err, errs.FailedPrecondition) || err.Error() != "part "+formatID(part.ID)+" is at version 2, not 1: read it again" {
		t.Errorf("stale update: %v, want ErrConflict naming both versions", err)
	}
	// Invalid values are refused inside the transaction: nothing is written.
	neg := int64(-5)
	if _, err := admin.UpdatePart(ctx, "olga", formatID(part.ID), catalog.PartChange{Price: &neg, Currency: ptr("BRL")}, 0); !errors.Is(err, errs.InvalidArgument) {
		t.Errorf("negative price: %v, want ErrInvalid", err)
	}
	// A car with a part on sale cannot be retired.
	if _, err := admin.RetireCar(ctx, "olga", "gol", 0); !errors.Is(err, errs.FailedPrecondition) {
		t.Errorf("retire a car with parts: %v, want ErrConflict", err)
	}
	if _, err := admin.RetirePart(ctx, "olga", formatID(part.ID), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := read.BatchGetParts(ctx, []string{formatID(part.ID)}); !errors.Is(err, errs.NotFound) {
		t.Errorf("read a retired part: %v, want ErrNotFound", err)
	}
	if page, err := read.ListParts(ctx, catalog.PartsQuery{Car: "gol"}); err != nil || len(page.Parts) != 0 {
		t.Errorf("list the car's parts after retiring its only part = %v, %v; want none", page.Parts, err)
	}
	if _, err := admin.UpdatePart(ctx, "olga", formatID(part.ID), catalog.PartChange{Name: ptr("x")}, 0); !errors.Is(err, errs.FailedPrecondition) {
		t.Errorf("update a retired part: %v, want ErrConflict", err)
	}
	retired, err := admin.RetireCar(ctx, "olga", "gol", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !retired.Retired || retired.Version != 2 {
		t.Errorf("retired car = %+v, want retired at version 2", retired)
	}
	if _, err := read.ListParts(ctx, catalog.PartsQuery{Car: "Gol"}); !errors.Is(err, errs.NotFound) {
		t.Errorf("list a retired car's parts: %v, want ErrNotFound", err)
	}
	cars, err := read.ListCars(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cars {
		if c.ID == "gol" {
			t.Errorf("ListCars lists the retired car: %v", cars)
		}
	}
	if _, err := admin.CreatePart(ctx, "olga", catalog.Part{CarID: "gol", Name: "Capô", Category: catalog.CategoryHood, Price: 1, Currency: "BRL"}); !errors.Is(err, errs.FailedPrecondition) {
		t.Errorf("add a part to a retired car: %v, want ErrConflict", err)
	}
	// Ids and names stay taken after retirement (ids are never reused).
	if _, err := admin.CreateCar(ctx, "olga", catalog.Car{ID: "gol", Name: "Gol 2", FirstYear: 2024, LastYear: 2024}); !errors.Is(err, errs.Conflict) {
		t.Errorf("create a car with a retired car's id: %v, want ErrExists", err)
	}
	if _, err := admin.CreateCar(ctx, "olga", catalog.Car{ID: "civic-2", Name: "CIVIC", FirstYear: 2024, LastYear: 2024}); !errors.Is(err, errs.Conflict) || err.Error() != "a car with that name already exists" {
		t.Errorf("create a car named like another: %v, want ErrExists", err)
	}

	p := formatID(part.ID)
	partAt := func(version int, price float64, retired bool) map[string]any {
		return map[string]any{"id": p, "carId": "gol", "name": "Farol", "category": "headlight", "priceMinor": price,
			"currency": "BRL", "version": float64(version), "retired": retired}
	}
	carAt := func(version int, retired bool) map[string]any {
		return map[string]any{"id": "gol", "name": "Gol", "firstYear": float64(2008), "lastYear": float64(2023), "version": float64(version), "retired": retired}
	}
	// Only the changes that committed are in the trail.
	wantParts := []auditRow{
		{"olga", "create", "part", p, nil, partAt(1, 15000, false)},
		{"pedro", "update", "part", p, partAt(1, 15000, false), partAt(2, 17990, false)},
		{"olga", "retire", "part", p, partAt(2, 17990, false), partAt(3, 17990, true)},
	}
	if diff := cmp.Diff(wantParts, auditRows(t, pool, "part", p)); diff != "" {
		t.Errorf("part audit rows (-want +got):\n%s", diff)
	}
	wantCars := []auditRow{
		{"olga", "create", "car", "gol", nil, carAt(1, false)},
		{"olga", "retire", "car", "gol", carAt(1, false), carAt(2, true)},
	}
	if diff := cmp.Diff(wantCars, auditRows(t, pool, "car", "gol")); diff != "" {
		t.Errorf("car audit rows (-want +got):\n%s", diff)
	}
}

// TestAdminNotFound: changes to records that do not exist are ErrNotFound
// and write nothing.
func TestAdminNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	admin := catalog.NewAdmin(store.New(pool))
	name := "x"
	for what, err := range map[string]error{
		"update part":      second(admin.UpdatePart(ctx, "olga", "999999", catalog.PartChange{Name: &name}, 0)),
		"retire part":      second(admin.RetirePart(ctx, "olga", "999999", 0)),
		"update car":       second(admin.UpdateCar(ctx, "olga", "gol", catalog.CarChange{Name: &name}, 0)),
		"retire car":       second(admin.RetireCar(ctx, "olga", "gol", 0)),
		"part of no car":   second(admin.CreatePart(ctx, "olga", catalog.Part{CarID: "gol", Name: "x", Category: catalog.CategoryHood, Currency: "BRL"})),
		"part id not a id": second(admin.RetirePart(ctx, "olga", "6 OR 1=1", 0)),
	} {
		want := errs.NotFound
		if what == "part id not a id" {
			want = errs.InvalidArgument
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM catalog.audit").Scan(&n); err != nil || n != 0 {
		t.Errorf("audit rows after failed changes: %d, %v; want 0", n, err)
	}
}

// TestAdminConcurrentUpdates: operators changing one part at the same
// version race; exactly one wins, the others are told to read again, and
// the trail has one row per committed change.
func TestAdminConcurrentUpdates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	admin := catalog.NewAdmin(store.New(pool))
	const n = 8
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Go(func() {
			price := int64(30000 + i)
			_, results[i] = admin.UpdatePart(ctx, "olga", "13", catalog.PartChange{Price: &price, Currency: ptr("BRL")}, 1)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errs.FailedPrecondition):
			t.Errorf("concurrent update: %v, want success or FailedPrecondition", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d updates at version 1 succeeded, want 1", won, n)
	}
	if rows := auditRows(t, pool, "part", "13"); len(rows) != 1 {
		t.Errorf("%d audit rows, want 1", len(rows))
	}
}

func second[T any](_ T, err error) error { return err }

func ptr[T any](v T) *T { return &v }

func formatID(id int64) string {
	b, _ := json.Marshal(id)
	return string(b)
}
