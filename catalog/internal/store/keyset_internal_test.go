package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/migrations/dbtest"
)

// TestKeysetPagesDeepIntoTheList walks every page of a car of 5,000 parts
// (interleaved with another car's, every 7th retired) through the catalog
// service on PostgreSQL: the pages together are the car's visible parts,
// once each, in id order. Then it checks, from the plan, that a page deep
// into the list costs what the first does: list_parts starts its index
// scan at the page token's id (Index Cond "id > …"), it does not read and
// skip the earlier rows (no OFFSET, no sort).
func TestKeysetPagesDeepIntoTheList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	for _, q := range []string{
		`INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('deep', 'Deep', 2020, 2024), ('other', 'Other', 2020, 2024)`,
		`INSERT INTO catalog.parts (car_id, name, category, price_minor)
		 SELECT CASE WHEN g % 2 = 0 THEN 'deep' ELSE 'other' END, 'Part ' || g, 'engine', 100 * g
		 FROM generate_series(1, 10000) AS g`,
		`UPDATE catalog.parts SET retired_at = now() WHERE car_id = 'deep' AND id % 7 = 0`,
		`ANALYZE catalog.parts`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT id FROM catalog.parts WHERE car_id = 'deep' AND retired_at IS NULL ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}

	svc := catalog.NewService(New(pool))
	var got []int64
	var deepest int64 // the id the last page's token carries
	token := ""
	for {
		page, err := svc.ListParts(ctx, catalog.PartsQuery{Car: "Deep", PageSize: 100, PageToken: token})
		if err != nil {
			t.Fatalf("after %d parts: %v", len(got), err)
		}
		if len(page.Parts) == 0 || len(page.Parts) > 100 {
			t.Fatalf("after %d parts: a page of %d", len(got), len(page.Parts))
		}
		if token != "" {
			deepest = got[len(got)-1]
		}
		for _, p := range page.Parts {
			got = append(got, p.ID)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("walked %d parts, want %d", len(got), len(want))
	}

	for _, after := range []int64{0, deepest} {
		var plan []byte
		if err := pool.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+listPartsSQL, "deep", after, 101).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		scan, ok := partsScan(t, plan)
		if !ok {
			t.Fatalf("after %d: no index scan of parts in the plan:\n%s", after, plan)
		}
		if !strings.Contains(scan.IndexCond, "(id > ") {
			t.Errorf("after %d: the index scan does not start at the token (Index Cond %q)", after, scan.IndexCond)
		}
		// The rows read are about the page's, however deep: never the
		// earlier ones (an OFFSET would read ~5,000 here). With half the
		// table this car's, the planner may walk the primary key and filter
		// the other car's rows out: twice the page, still not the depth.
		if read := scan.ActualRows + scan.RemovedByFilter; read > 4*101 {
			t.Errorf("after %d: the scan read %v rows for a page of 101", after, read)
		}
	}
}

type planNode struct {
	NodeType        string     `json:"Node Type"`
	Relation        string     `json:"Relation Name"`
	IndexCond       string     `json:"Index Cond"`
	ActualRows      float64    `json:"Actual Rows"`
	RemovedByFilter float64    `json:"Rows Removed by Filter"`
	Plans           []planNode `json:"Plans"`
}

// partsScan finds the plan's scan of catalog.parts, if it is an index scan.
func partsScan(t *testing.T, plan []byte) (planNode, bool) {
	t.Helper()
	var top []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(plan, &top); err != nil || len(top) != 1 {
		t.Fatalf("plan: %v\n%s", err, plan)
	}
	var find func(n planNode) (planNode, bool)
	find = func(n planNode) (planNode, bool) {
		if n.Relation == "parts" {
			return n, n.NodeType == "Index Scan"
		}
		for _, c := range n.Plans {
			if f, ok := find(c); ok {
				return f, ok
			}
		}
		return planNode{}, false
	}
	return find(top[0].Plan)
}
