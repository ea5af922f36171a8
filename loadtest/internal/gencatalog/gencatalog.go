// Package gencatalog fills catalog.cars and catalog.parts with a large,
// deterministic, generated catalog (pgx COPY), so that caching, pagination and
// queries are exercised at a realistic size. Generated cars have slugs
// "<prefix>-00001", "<prefix>-00002", …; their parts are the only ones with
// those car ids, so the generated set can be replaced or dropped without
// touching the seed or anything else.
package gencatalog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options say what to generate.
type Options struct {
	Prefix string // slug prefix of the generated cars, e.g. "gen"
	Models int    // number of car models
	Parts  int    // parts per model (the first is the model's chassis)
	Seed   uint64 // PRNG seed: same options, same catalog
}

var slug = regexp.MustCompile(`^[a-z0-9]+$`)

// Validate checks the options against the schema's constraints.
func (o Options) Validate() error {
	switch {
	case !slug.MatchString(o.Prefix) || len(o.Prefix) > 40:
		return fmt.Errorf("prefix %q: want 1-40 lowercase letters or digits", o.Prefix)
	case o.Models < 1 || o.Models > 1_000_000:
		return fmt.Errorf("models %d: want 1-1000000", o.Models)
	case o.Parts < 1 || o.Parts > 100_000:
		return fmt.Errorf("parts per model %d: want 1-100000", o.Parts)
	case int64(o.Models)*int64(o.Parts) > 50_000_000:
		return errors.New("more than 50 million parts: pick fewer")
	}
	return nil
}

// category of the i-th part of a model (0 = chassis), with its display name
// and price range in centavos.
type category struct {
	db, name   string
	minP, maxP int64
}

var categories = []category{
	{"chassis", "Chassi", 300_000, 1_200_000},
	{"engine", "Motor", 200_000, 900_000},
	{"wheels", "Rodas", 40_000, 200_000},
	{"headlight", "Farol", 8_000, 60_000},
	{"bumper", "Parachoque", 10_000, 70_000},
	{"hood", "Capô", 20_000, 90_000},
	{"spoiler", "Spoiler", 10_000, 50_000},
	{"hybrid_system", "Sistema Híbrido", 100_000, 400_000},
}

// CarID is the slug of generated model n (1-based).
func (o Options) CarID(n int) string {
	return fmt.Sprintf("%s-%s", o.Prefix, o.digits(n))
}

func (o Options) digits(n int) string {
	w := max(5, len(fmt.Sprint(o.Models)))
	return fmt.Sprintf("%0*d", w, n)
}

func (o Options) pattern() string { return o.Prefix + "-%" }

// Result says what Generate did.
type Result struct {
	Cars, Parts int64
	Replaced    bool // an earlier generated set with this prefix was deleted first
	Unchanged   bool // the same set was already there; nothing written
	Took        time.Duration
}

// Generate makes the generated set exactly what o describes, in one
// transaction: when cars with the prefix already exist with the same counts it
// does nothing, otherwise it deletes them and copies the new set in.
func Generate(ctx context.Context, conn *pgx.Conn, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	var res Result
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// One generator at a time per prefix.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('gencatalog:' || $1))`, o.Prefix); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		cars, parts, fp, err := count(ctx, tx, o)
		if err != nil {
			return err
		}
		if cars == int64(o.Models) && parts == int64(o.Models)*int64(o.Parts) && fp == o.fingerprint() {
			res.Unchanged = true
			res.Cars, res.Parts = cars, parts
			return nil
		}
		if cars > 0 {
			if err := drop(ctx, tx, o.Prefix); err != nil {
				return err
			}
			res.Replaced = true
		}
		if res.Cars, err = tx.CopyFrom(ctx, pgx.Identifier{"catalog", "cars"}, []string{"id", "name", "first_year", "last_year"}, o.carRows()); err != nil {
			return fmt.Errorf("copy cars: %w", err)
		}
		if res.Parts, err = tx.CopyFrom(ctx, pgx.Identifier{"catalog", "parts"}, []string{"car_id", "name", "category", "price_minor", "currency"}, o.partRows()); err != nil {
			return fmt.Errorf("copy parts: %w", err)
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if !res.Unchanged {
		// Fresh statistics so the planner sees the new size at once.
		if _, err := conn.Exec(ctx, `ANALYZE catalog.cars, catalog.parts`); err != nil {
			return Result{}, fmt.Errorf("analyze: %w", err)
		}
	}
	res.Took = time.Since(start)
	return res, nil
}

// Drop deletes every generated car with the prefix and its parts.
func Drop(ctx context.Context, conn *pgx.Conn, prefix string) (cars int64, err error) {
	if !slug.MatchString(prefix) {
		return 0, fmt.Errorf("prefix %q: want lowercase letters or digits", prefix)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM catalog.cars WHERE id LIKE $1`, prefix+"-%").Scan(&cars); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		return drop(ctx, tx, prefix)
	})
	return cars, err
}

func drop(ctx context.Context, tx pgx.Tx, prefix string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM catalog.parts WHERE car_id LIKE $1`, prefix+"-%"); err != nil {
		return fmt.Errorf("delete parts: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM catalog.cars WHERE id LIKE $1`, prefix+"-%"); err != nil {
		return fmt.Errorf("delete cars: %w", err)
	}
	return nil
}

// count returns the generated cars and parts present, and a fingerprint of
// the first car's first part (its price depends on the seed).
func count(ctx context.Context, tx pgx.Tx, o Options) (cars, parts, fp int64, err error) {
	if err = tx.QueryRow(ctx, `SELECT count(*) FROM catalog.cars WHERE id LIKE $1`, o.pattern()).Scan(&cars); err != nil {
		return 0, 0, 0, fmt.Errorf("count cars: %w", err)
	}
	if err = tx.QueryRow(ctx, `SELECT count(*) FROM catalog.parts WHERE car_id LIKE $1`, o.pattern()).Scan(&parts); err != nil {
		return 0, 0, 0, fmt.Errorf("count parts: %w", err)
	}
	err = tx.QueryRow(ctx, `SELECT coalesce(sum(price_minor), 0) FROM catalog.parts WHERE car_id = $1`, o.CarID(1)).Scan(&fp)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("fingerprint: %w", err)
	}
	return cars, parts, fp, nil
}

// fingerprint is the sum of the first model's part prices, as generated.
func (o Options) fingerprint() int64 {
	var sum int64
	rows := o.partRows()
	for i := 0; i < o.Parts && rows.Next(); i++ {
		v, _ := rows.Values()
		sum += v[3].(int64)
	}
	return sum
}

// carRows yields the generated cars: model years spread over 1990-2029.
func (o Options) carRows() pgx.CopyFromSource {
	n := 0
	return &rowFunc{next: func() ([]any, bool) {
		if n >= o.Models {
			return nil, false
		}
		n++
		first := 1990 + (n*7)%35
		last := first + n%8
		return []any{o.CarID(n), "Model " + strings.ToUpper(o.CarID(n)), int32(first), int32(last)}, true
	}}
}

// partRows yields the generated parts, model by model: part 1 is the chassis,
// the others cycle through the other categories. Prices come from a PCG seeded
// with o.Seed, so the catalog is the same for the same options.
func (o Options) partRows() pgx.CopyFromSource {
	rng := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	model, part := 1, 0
	return &rowFunc{next: func() ([]any, bool) {
		if part == o.Parts {
			model, part = model+1, 0
		}
		if model > o.Models {
			return nil, false
		}
		part++
		c := categories[0]
		if part > 1 {
			c = categories[1+(part-2)%(len(categories)-1)]
		}
		price := c.minP + rng.Int64N(c.maxP-c.minP+1)
		price -= price % 100 // whole reais, like the seed
		name := fmt.Sprintf("%s %s-%s #%d", c.name, o.Prefix, o.digits(model), part)
		return []any{o.CarID(model), name, c.db, price, "BRL"}, true
	}}
}

// rowFunc adapts a generator function to pgx.CopyFromSource.
type rowFunc struct {
	next func() ([]any, bool)
	cur  []any
}

func (r *rowFunc) Next() bool {
	var ok bool
	r.cur, ok = r.next()
	return ok
}

func (r *rowFunc) Values() ([]any, error) { return r.cur, nil }
func (r *rowFunc) Err() error             { return nil }
