package bigcat

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The catalog's read statements, exactly as catalog/internal/store runs them
// (a test compares them with that file: the benchmark cannot import a
// service's internal package).
const (
	listCarsSQL = `-- name: list_cars
SELECT id, name, first_year, last_year FROM catalog.cars WHERE retired_at IS NULL ORDER BY name, id`

	findCarSQL = `-- name: find_car
SELECT id, name, first_year, last_year FROM catalog.cars
WHERE (id = lower($1) OR lower(name) = lower($1)) AND retired_at IS NULL
ORDER BY id = lower($1) DESC
LIMIT 1`

	listPartsSQL = `-- name: list_parts
SELECT id, car_id, name, category, price_minor, currency FROM catalog.parts
WHERE car_id = $1 AND id > $2 AND retired_at IS NULL
ORDER BY id
LIMIT $3`

	getPartsSQL = `-- name: get_parts
SELECT id, car_id, name, category, price_minor, currency FROM catalog.parts
WHERE id = ANY($1) AND retired_at IS NULL`
)

// Explained is the plan of one statement with one set of arguments.
type Explained struct {
	Query string // the statement's name and what the arguments ask
	SQL   string
	Args  string
	Plan  string // EXPLAIN (ANALYZE, BUFFERS), the custom plan for these arguments
	// Generic is the plan a prepared statement falls back to after five
	// executions (pgx prepares every statement; plan_cache_mode
	// force_generic_plan shows it), also executed.
	Generic string
}

// Explain runs EXPLAIN (ANALYZE, BUFFERS) of every statement the catalog
// runs to serve the two read routes (and ListCars and GetParts), with
// arguments taken from d: a car in the middle, its first page, a page deep
// into its list, and the load of a whole car into the catalog's cache.
func Explain(ctx context.Context, conn *pgx.Conn, d *Data) ([]Explained, error) {
	car := len(d.Cars) / 2
	c, parts := d.Cars[car], d.Parts[car]
	deep := parts[max(0, len(parts)-PageSize-1)].ID // the last page
	var ids []int64
	for i := 0; i < 10; i++ {
		k := (car + i*997) % len(d.Cars)
		if ps := d.Parts[k]; len(ps) > 0 {
			ids = append(ids, ps[len(ps)/2].ID)
		}
	}
	cases := []struct {
		name, sql string
		args      []any
	}{
		{"find_car by id (GET /v1/cars/{id}/parts)", findCarSQL, []any{c.ID}},
		{"find_car by model name (POST /get-pecas)", findCarSQL, []any{c.Name}},
		{"list_parts, first page (page_size 20 + 1)", listPartsSQL, []any{c.ID, int64(0), PageSize + 1}},
		{"list_parts, last page (keyset: id > the page token's id)", listPartsSQL, []any{c.ID, deep, PageSize + 1}},
		{"list_parts, a whole car into the catalog's cache (limit 1000)", listPartsSQL, []any{c.ID, int64(0), 1000}},
		{"get_parts, 10 ids of 10 cars (BatchGetParts, pricing)", getPartsSQL, []any{ids}},
		{"list_cars (GET /v1/cars; once per cache TTL)", listCarsSQL, nil},
	}
	var out []Explained
	for _, cs := range cases {
		e := Explained{Query: cs.name, SQL: cs.sql, Args: fmt.Sprintf("%v", cs.args)}
		var err error
		if e.Plan, err = explain(ctx, conn, cs.sql, cs.args, false); err != nil {
			return nil, fmt.Errorf("explain %s: %w", cs.name, err)
		}
		if len(cs.args) > 0 {
			if e.Generic, err = explain(ctx, conn, cs.sql, cs.args, true); err != nil {
				return nil, fmt.Errorf("explain %s (generic): %w", cs.name, err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// explain explains sql with args: the custom plan (the arguments bound as
// values), or the generic plan of the statement prepared as the catalog's
// pool prepares it (parameters left as $n).
func explain(ctx context.Context, conn *pgx.Conn, sql string, args []any, generic bool) (string, error) {
	var lines []string
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		q := "EXPLAIN (ANALYZE, BUFFERS) " + sql
		if generic {
			if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "PREPARE bigcat_explained AS "+sql); err != nil {
				return err
			}
			// EXECUTE takes no bind parameters: the arguments go as literals.
			lits := make([]string, len(args))
			for i, a := range args {
				lits[i] = literal(a)
			}
			q, args = "EXPLAIN (ANALYZE, BUFFERS) EXECUTE bigcat_explained("+strings.Join(lits, ", ")+")", nil
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		var line string
		_, err = pgx.ForEachRow(rows, []any{&line}, func() error {
			lines = append(lines, line)
			return nil
		})
		return err
	})
	if generic { // prepared statements outlive transactions
		_, _ = conn.Exec(ctx, "DEALLOCATE bigcat_explained")
	}
	return strings.Join(lines, "\n"), err
}

// Markdown renders the plans as a report section.
func Markdown(es []Explained) string {
	var w strings.Builder
	w.WriteString("## EXPLAIN (ANALYZE, BUFFERS) of the catalog's queries\n\n")
	w.WriteString("Run on the bench's database after the run, with the generated catalog loaded. ")
	w.WriteString("\"custom\" is the plan for these arguments; \"generic\" the one a prepared statement may switch to (pgx prepares every statement).\n")
	for _, e := range es {
		fmt.Fprintf(&w, "\n### %s\n\nArguments: `%s`\n\n```sql\n%s\n```\n\ncustom:\n\n```\n%s\n```\n", e.Query, e.Args, e.SQL, e.Plan)
		if e.Generic != "" {
			fmt.Fprintf(&w, "\ngeneric:\n\n```\n%s\n```\n", e.Generic)
		}
	}
	return w.String()
}

// literal is a as an SQL literal (the types Explain's arguments have).
func literal(a any) string {
	switch v := a.(type) {
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case []int64:
		ns := make([]string, len(v))
		for i, n := range v {
			ns[i] = strconv.FormatInt(n, 10)
		}
		return "ARRAY[" + strings.Join(ns, ",") + "]::bigint[]"
	default:
		return fmt.Sprint(v) // integers
	}
}
