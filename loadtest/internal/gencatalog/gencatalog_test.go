package gencatalog

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/migrations/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestGenerateIdempotentAndDrop(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	ctx := context.Background()
	o := Options{Prefix: "gen", Models: 3, Parts: 10, Seed: 1}

	res, err := Generate(ctx, conn, o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if res.Cars != 3 || res.Parts != 30 || res.Replaced || res.Unchanged {
		t.Fatalf("first Generate = %+v, want 3 cars, 30 parts, fresh", res)
	}

	// One chassis per model, every part priced in whole reais, names unique.
	var models, chassis, badPrice, names int
	err = conn.QueryRow(ctx, `
		SELECT count(DISTINCT car_id), count(*) FILTER (WHERE category = 'chassis'),
		       count(*) FILTER (WHERE price_minor <= 0 OR price_minor % 100 <> 0), count(DISTINCT name)
		FROM catalog.parts WHERE car_id LIKE 'gen-%'`).Scan(&models, &chassis, &badPrice, &names)
	if err != nil {
		t.Fatal(err)
	}
	if models != 3 || chassis != 3 || badPrice != 0 || names != 30 {
		t.Errorf("got %d models, %d chassis, %d bad prices, %d names; want 3, 3, 0, 30", models, chassis, badPrice, names)
	}

	// Same options: nothing written.
	res, err = Generate(ctx, conn, o)
	if err != nil || !res.Unchanged {
		t.Errorf("second Generate = %+v, %v; want unchanged", res, err)
	}

	// Another seed: replaced, same counts, different prices.
	res, err = Generate(ctx, conn, Options{Prefix: "gen", Models: 3, Parts: 10, Seed: 2})
	if err != nil || !res.Replaced || res.Parts != 30 {
		t.Errorf("Generate with a new seed = %+v, %v; want replaced, 30 parts", res, err)
	}

	n, err := Drop(ctx, conn, "gen")
	if err != nil || n != 3 {
		t.Fatalf("Drop = %d, %v; want 3", n, err)
	}
	var left, seed int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM catalog.cars WHERE id LIKE 'gen-%'), (SELECT count(*) FROM catalog.parts)`).Scan(&left, &seed); err != nil {
		t.Fatal(err)
	}
	if left != 0 || seed != 20 {
		t.Errorf("after Drop: %d generated cars, %d parts; want 0 and the 20 seed parts", left, seed)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a := Options{Prefix: "gen", Models: 2, Parts: 9, Seed: 7}
	// Two separate generations of the same options must agree.
	if first, second := a.fingerprint(), a.fingerprint(); first != second {
		t.Fatal("same options, different catalogs")
	}
	b := a
	b.Seed = 8
	if a.fingerprint() == b.fingerprint() {
		t.Error("different seeds, same prices")
	}
	if got := a.CarID(2); got != "gen-00002" {
		t.Errorf("CarID(2) = %q", got)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{Prefix: "Gen", Models: 1, Parts: 1},
		{Prefix: "g-x", Models: 1, Parts: 1},
		{Prefix: "gen", Models: 0, Parts: 1},
		{Prefix: "gen", Models: 1, Parts: 0},
	} {
		if o.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", o)
		}
	}
}
