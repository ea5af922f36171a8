// Package bigcat is the big-catalog benchmark (issue 17, target 1): a
// generated catalog of 10,000 models × 100 parts (package gencatalog), read
// uniformly at random over models, model years and pages, so that most
// answers are cache misses all the way down to PostgreSQL.
//
// It holds the same data in memory (Data, read back from the stack's
// database after generation), serves it as the bare reference (Handler:
// net/http + encoding/json from a map, the same JSON as the stack), drives
// the two read routes against either (Parts, GetPecas: every answer checked
// against Data) and explains the catalog's queries (Explain).
package bigcat

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"
)

// Car is a generated car model and its model years (inclusive).
type Car struct {
	ID        string
	Name      string
	FirstYear int
	LastYear  int
}

// Part is a part of one car; Price in centavos.
type Part struct {
	ID       int64
	Name     string
	Category string // the schema's name: chassis, engine, …
	Price    int64
	Currency string
}

// Data is the generated catalog as the benchmark knows it: cars in id order,
// each with its parts in id order (the /v1 pages) and in the seed-compatible
// name order (POST /get-pecas).
type Data struct {
	Cars   []Car
	Parts  [][]Part // Parts[i]: the parts of Cars[i], by id
	ByName [][]int  // ByName[i]: indexes into Parts[i] in get-pecas order
	byID   map[string]int
	byName map[string]int // lower(name) → car index
}

const (
	loadCarsSQL = `SELECT id, name, first_year, last_year FROM catalog.cars
WHERE id LIKE $1 AND retired_at IS NULL ORDER BY id`
	loadPartsSQL = `SELECT car_id, id, name, category, price_minor, currency FROM catalog.parts
WHERE car_id LIKE $1 AND retired_at IS NULL ORDER BY car_id, id`
)

// Load reads the cars with slug prefix "<prefix>-" and their parts from the
// database, as the catalog would serve them.
func Load(ctx context.Context, conn *pgx.Conn, prefix string) (*Data, error) {
	pattern := prefix + "-%"
	d := &Data{byID: map[string]int{}, byName: map[string]int{}}
	rows, err := conn.Query(ctx, loadCarsSQL, pattern)
	if err != nil {
		return nil, fmt.Errorf("load cars: %w", err)
	}
	var c Car
	_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.Name, &c.FirstYear, &c.LastYear}, func() error {
		d.byID[c.ID] = len(d.Cars)
		d.byName[strings.ToLower(c.Name)] = len(d.Cars)
		d.Cars = append(d.Cars, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load cars: %w", err)
	}
	if len(d.Cars) == 0 {
		return nil, fmt.Errorf("no cars with prefix %q: generate them first", prefix)
	}
	d.Parts = make([][]Part, len(d.Cars))
	rows, err = conn.Query(ctx, loadPartsSQL, pattern)
	if err != nil {
		return nil, fmt.Errorf("load parts: %w", err)
	}
	var carID string
	var p Part
	cur := -1
	_, err = pgx.ForEachRow(rows, []any{&carID, &p.ID, &p.Name, &p.Category, &p.Price, &p.Currency}, func() error {
		if cur < 0 || d.Cars[cur].ID != carID {
			i, ok := d.byID[carID]
			if !ok {
				return fmt.Errorf("part %d of unknown car %q", p.ID, carID)
			}
			cur = i
		}
		d.Parts[cur] = append(d.Parts[cur], p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load parts: %w", err)
	}
	d.sortByName()
	return d, nil
}

// sortByName computes the get-pecas order of every car: the catalog's
// (catalog/internal/catalog nameOrder: CLDR root collation through
// x/text/collate for English, then id). Sort keys order exactly as the
// collator compares, and are computed once per name.
func (d *Data) sortByName() {
	d.ByName = make([][]int, len(d.Cars))
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			col := collate.New(language.English)
			var buf collate.Buffer
			for i := w; i < len(d.Cars); i += workers {
				parts := d.Parts[i]
				keys := make([][]byte, len(parts))
				for j, p := range parts {
					keys[j] = slices.Clone(col.KeyFromString(&buf, p.Name))
					buf.Reset()
				}
				order := make([]int, len(parts))
				for j := range order {
					order[j] = j
				}
				slices.SortFunc(order, func(a, b int) int {
					if c := bytes.Compare(keys[a], keys[b]); c != 0 {
						return c
					}
					return int(parts[a].ID - parts[b].ID)
				})
				d.ByName[i] = order
			}
		}()
	}
	wg.Wait()
}

// Count returns the number of parts held.
func (d *Data) Count() int {
	n := 0
	for _, ps := range d.Parts {
		n += len(ps)
	}
	return n
}

// Pages is how many pages of size the car's parts take (at least one: an
// empty car answers one empty page).
func (d *Data) Pages(car, size int) int {
	return max(1, (len(d.Parts[car])+size-1)/size)
}

// Page returns page (0-based) of the car's parts and the token of the next
// page ("" on the last).
func (d *Data) Page(car, page, size int) ([]Part, string) {
	all := d.Parts[car]
	from := min(page*size, len(all))
	to := min(from+size, len(all))
	next := ""
	if to < len(all) {
		next = PageToken(d.Cars[car].ID, all[to-1].ID)
	}
	return all[from:to], next
}

// PageToken is the page token of the page after lastID. The token is opaque
// to clients; the benchmark makes it the way the catalog does
// (base64url("<car id>:<last part id>"), catalog/internal/catalog) so that
// it can ask for any page of any car directly, and every answer's
// nextPageToken is checked against it.
func PageToken(carID string, lastID int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(carID + ":" + strconv.FormatInt(lastID, 10)))
}

// pageAfter decodes a token into the index of the first part of its page.
func (d *Data) pageAfter(car int, token string) (int, bool) {
	if token == "" {
		return 0, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, false
	}
	id, last, ok := strings.Cut(string(raw), ":")
	if !ok || id != d.Cars[car].ID {
		return 0, false
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	all := d.Parts[car]
	i, _ := slices.BinarySearchFunc(all, n, func(p Part, id int64) int { return int(p.ID - id) })
	if i < len(all) && all[i].ID == n {
		i++
	}
	return i, true
}

// Car returns the index of the car with id, or false.
func (d *Data) Car(id string) (int, bool) {
	i, ok := d.byID[id]
	return i, ok
}

// Model returns the index of the car named model, case-insensitively.
func (d *Data) Model(model string) (int, bool) {
	i, ok := d.byName[strings.ToLower(model)]
	return i, ok
}

// CategoryProto is the /v1 JSON name of a schema category.
func CategoryProto(c string) string { return "PART_CATEGORY_" + strings.ToUpper(c) }
