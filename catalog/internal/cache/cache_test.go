package cache_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carbuild/carbuild/catalog/internal/cache"
	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/catalog/internal/store"
	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// counting counts the reads that reach PostgreSQL.
type counting struct {
	catalog.Store
	reads atomic.Int64
}

func (c *counting) ListCars(ctx context.Context) ([]catalog.Car, error) {
	c.reads.Add(1)
	return c.Store.ListCars(ctx)
}

func (c *counting) FindCar(ctx context.Context, k string) (catalog.Car, error) {
	c.reads.Add(1)
	return c.Store.FindCar(ctx, k)
}

func (c *counting) ListParts(ctx context.Context, id string, after int64, limit int) ([]catalog.Part, error) {
	c.reads.Add(1)
	return c.Store.ListParts(ctx, id, after, limit)
}

func (c *counting) GetParts(ctx context.Context, ids []int64) ([]catalog.Part, error) {
	c.reads.Add(1)
	return c.Store.GetParts(ctx, ids)
}

func setup(t *testing.T, opt cache.Options) (*cache.Store, *counting, *pgxpool.Pool) {
	t.Helper()
	pool := dbtest.NewPool(t)
	db := &counting{Store: store.New(pool)}
	c := cache.New(db, opt, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Listen(ctx, pool, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })
	// Wait for the listener: a read is cached only once it is connected.
	waitFor(t, func() bool {
		_, _ = c.ListCars(context.Background())
		before := db.reads.Load()
		_, _ = c.ListCars(context.Background())
		return db.reads.Load() == before
	})
	return c, db, pool
}

func waitFor(t *testing.T, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 5*time.Second {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestServesRepeatedReadsFromMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, db, _ := setup(t, cache.Options{})
	svc := catalog.NewService(c)
	// The first read of a car is answered from PostgreSQL; the second
	// (the doorkeeper's) loads the car whole.
	for range 2 {
		if _, err := svc.PartsForModel(ctx, "Civic"); err != nil {
			t.Fatal(err)
		}
	}
	before := db.reads.Load()
	for range 100 {
		parts, err := svc.PartsForModel(ctx, "civic")
		if err != nil || len(parts) != 7 {
			t.Fatalf("PartsForModel = %d parts, %v", len(parts), err)
		}
		page, err := svc.ListParts(ctx, catalog.PartsQuery{Car: "CIVIC", PageSize: 3})
		if err != nil || len(page.Parts) != 3 || page.Parts[0].ID != 7 {
			t.Fatalf("ListParts = %+v, %v", page, err)
		}
		got, err := svc.BatchGetParts(ctx, []string{"13", "7"})
		if err != nil || got[0].ID != 13 || got[1].Price != 800000 {
			t.Fatalf("BatchGetParts = %+v, %v", got, err)
		}
	}
	// "civic" and "CIVIC" are one key; the only extra read is the first
	// lookup by the other spelling... which lowercases to the same key.
	if extra := db.reads.Load() - before; extra != 0 {
		t.Errorf("300 cached reads reached PostgreSQL %d times, want 0", extra)
	}
	if _, err := svc.PartsForModel(ctx, "gol"); err == nil {
		t.Error("unknown model found")
	}
}

func TestChangesAreVisibleAfterNotify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, pool := setup(t, cache.Options{TTL: time.Hour})
	svc := catalog.NewService(c)
	price := func() int64 {
		got, err := svc.BatchGetParts(ctx, []string{"10"})
		if err != nil {
			t.Fatal(err)
		}
		return got[0].Price
	}
	if p := price(); p != 35000 {
		t.Fatalf("price of part 10 = %d, want 35000", p)
	}
	if _, err := pool.Exec(ctx, `UPDATE catalog.parts SET price_minor = 36000 WHERE id = 10`); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, func() bool { return price() == 36000 })
	t.Logf("price change visible after %s (TTL 1h: the notification did it)", took)

	if _, err := pool.Exec(ctx, `INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('gol', 'Gol', 2010, 2015)`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		cars, err := svc.ListCars(ctx)
		return err == nil && len(cars) == 4
	})
}

func TestEvictsBeyondTheBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A budget of 14 parts holds civic (7) and corolla (7); fusca (6) then
	// evicts the least recently used car, civic.
	c, db, _ := setup(t, cache.Options{MaxParts: 14})
	for _, car := range []string{"civic", "corolla", "fusca"} {
		for range 2 { // the second read is admitted: the car is loaded whole
			if _, err := c.ListParts(ctx, car, 0, 100); err != nil {
				t.Fatal(err)
			}
		}
	}
	reads := func(car string) int64 {
		before := db.reads.Load()
		if _, err := c.ListParts(ctx, car, 0, 100); err != nil {
			t.Fatal(err)
		}
		return db.reads.Load() - before
	}
	if n := reads("fusca"); n != 0 {
		t.Errorf("fusca (most recent) read PostgreSQL %d times, want 0", n)
	}
	if n := reads("corolla"); n != 0 {
		t.Errorf("corolla read PostgreSQL %d times, want 0", n)
	}
	if n := reads("civic"); n == 0 {
		t.Error("civic was not evicted beyond the budget")
	}
}

// TestRevisionFollowsTheDatabase checks against PostgreSQL that the cache
// knows the revision once its listener is connected, that an UPDATE of a
// part wakes watchers with the bumped revision, and that reads after the
// new revision is seen return the new data.
func TestRevisionFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, pool := setup(t, cache.Options{TTL: time.Hour})
	dbRevision := func() int64 {
		t.Helper()
		var n int64
		if err := pool.QueryRow(ctx, "SELECT n FROM catalog.revision").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rev, live := c.Revision()
	if want := dbRevision(); rev != want || !live {
		t.Fatalf("Revision() after connecting = %d, %v; want %d, true", rev, live, want)
	}
	if _, err := c.GetParts(ctx, []int64{10}); err != nil { // cached from now on
		t.Fatal(err)
	}
	_, _, changed := c.Watch()
	start := time.Now()
	if _, err := pool.Exec(ctx, `UPDATE catalog.parts SET price_minor = 36000 WHERE id = 10`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("watchers not woken within 5s of an UPDATE")
	}
	t.Logf("watchers woken %s after the UPDATE was sent", time.Since(start))
	got, live := c.Revision()
	if want := dbRevision(); got != want || got != rev+1 || !live {
		t.Errorf("Revision() after an UPDATE = %d, %v; want %d (= %d + 1), true", got, live, want, rev)
	}
	if w, wl, _ := c.Watch(); w != got || !wl {
		t.Errorf("Watch() = %d, %v; want %d, true", w, wl, got)
	}
	parts, err := c.GetParts(ctx, []int64{10})
	if err != nil || len(parts) != 1 || parts[0].Price != 36000 {
		t.Errorf("part 10 after revision %d: %+v, %v; want price 36000", got, parts, err)
	}
}

// TestRevisionNotLiveWithoutListener checks that a cache whose listener has
// stopped reports no live revision and wakes its watchers.
func TestRevisionNotLiveWithoutListener(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	c := cache.New(store.New(pool), cache.Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Listen(ctx, pool, slog.New(slog.DiscardHandler)) }()
	waitFor(t, func() bool { _, live := c.Revision(); return live })
	_, _, changed := c.Watch()
	cancel()
	<-done
	select {
	case <-changed:
	default:
		t.Error("watchers not woken when the listener stopped")
	}
	if rev, live := c.Revision(); rev != 0 || live {
		t.Errorf("Revision() without listener = %d, %v; want 0, false", rev, live)
	}
	if rev, live, _ := c.Watch(); rev != 1 || live {
		t.Errorf("Watch() without listener = %d, %v; want the last one seen (1), false", rev, live)
	}
}

// TestOlderSchemaWithoutRevision checks a database migrated only to 00004
// (no catalog.revision, notifications with an empty payload): the cache
// still works and is emptied on changes, and reports no revision. (The
// store's reads need 00008's retired_at columns, added by hand.)
func TestOlderSchemaWithoutRevision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := dbtest.New(t)
	db, err := migrations.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := migrations.DownTo(ctx, db, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE catalog.cars ADD COLUMN retired_at timestamptz;
		ALTER TABLE catalog.parts ADD COLUMN retired_at timestamptz`); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	counted := &counting{Store: store.New(pool)}
	c := cache.New(counted, cache.Options{TTL: time.Hour}, nil)
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Listen(lctx, pool, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })

	price := func() int64 {
		parts, err := c.GetParts(ctx, []int64{10})
		if err != nil || len(parts) != 1 {
			t.Fatalf("GetParts(10) = %v, %v", parts, err)
		}
		return parts[0].Price
	}
	// The listener connects: reads are then served from memory.
	waitFor(t, func() bool {
		price()
		before := counted.reads.Load()
		price()
		return counted.reads.Load() == before
	})
	if _, err := pool.Exec(ctx, `UPDATE catalog.parts SET price_minor = 36000 WHERE id = 10`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return price() == 36000 })
	if rev, live := c.Revision(); rev != 0 || live {
		t.Errorf("Revision() without catalog.revision = %d, %v; want 0, false", rev, live)
	}
}

// TestForgedNotificationIgnored: any database login may NOTIFY
// catalog_changed with any payload. A forged huge revision must not become
// the cache's revision (revisions never go back, so every real change after
// it would go unseen until the TTL): the cache re-reads the revision row.
func TestForgedNotificationIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, pool := setup(t, cache.Options{TTL: time.Hour})
	rev, _ := c.Revision()
	_, _, changed := c.Watch()
	if _, err := pool.Exec(ctx, `SELECT pg_notify('catalog_changed', '9223372036854775807')`); err != nil {
		t.Fatal(err)
	}
	// The notification empties the cache (harmless) and wakes no watcher:
	// the revision read back is unchanged. A real change after it must
	// still be seen as the next revision.
	if _, err := pool.Exec(ctx, `UPDATE catalog.parts SET price_minor = 36500 WHERE id = 10`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("watchers not woken within 5s of an UPDATE")
	}
	took := waitFor(t, func() bool { r, _ := c.Revision(); return r == rev+1 })
	t.Logf("revision %d after the forged notification and one UPDATE (waited %s)", rev+1, took)
	if got, live := c.Revision(); got != rev+1 || !live {
		t.Errorf("Revision() = %d, %v; want %d, true", got, live, rev+1)
	}
	parts, err := c.GetParts(ctx, []int64{10})
	if err != nil || len(parts) != 1 || parts[0].Price != 36500 {
		t.Errorf("part 10: %+v, %v; want price 36500", parts, err)
	}
}

// TestFindCarFromTheListOfCars checks the index of the list of cars against
// PostgreSQL's own find_car, key by key: the same car (or not found) for
// every key, ASCII keys of known cars answered without PostgreSQL, and
// other keys left to it.
func TestFindCarFromTheListOfCars(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, db, pool := setup(t, cache.Options{TTL: time.Hour})
	// x1/y1: each one's id is the other's name; ele: a non-ASCII name.
	if _, err := pool.Exec(ctx, `INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES
		('x1', 'Y1', 2020, 2021), ('y1', 'X1', 2020, 2021), ('ele', 'Élan', 2020, 2021)`); err != nil {
		t.Fatal(err)
	}
	direct := store.New(pool)
	// The insert's notification empties the cache: wait until the cache has
	// seen its revision, so that nothing empties the list loaded next.
	var rev int64
	if err := pool.QueryRow(ctx, `SELECT n FROM catalog.revision`).Scan(&rev); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		seen, live := c.Revision()
		return live && seen >= rev
	})
	if cars, err := c.ListCars(ctx); err != nil || len(cars) != 6 {
		t.Fatalf("ListCars = %d cars, %v; want 6", len(cars), err)
	}
	tests := []struct {
		key       string
		fromIndex bool // answered without PostgreSQL
	}{
		{"x1", true}, {"X1", true}, {"y1", true}, {"Y1", true},
		{"civic", true}, {"Civic", true}, {"CIVIC", true},
		{"ele", true},
		{"Élan", false}, {"élan", false}, {"ÉLAN", false},
		{"gol", false}, {"%", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			want, wantErr := direct.FindCar(ctx, tt.key)
			before := db.reads.Load()
			got, err := c.FindCar(ctx, tt.key)
			reads := db.reads.Load() - before
			if got != want || (err == nil) != (wantErr == nil) {
				t.Fatalf("FindCar(%q) = %+v, %v; PostgreSQL says %+v, %v", tt.key, got, err, want, wantErr)
			}
			if tt.fromIndex && reads != 0 {
				t.Errorf("FindCar(%q) read PostgreSQL %d times, want 0", tt.key, reads)
			}
			if !tt.fromIndex && wantErr != nil && reads == 0 {
				t.Errorf("FindCar(%q) (unknown) answered without PostgreSQL", tt.key)
			}
		})
	}
}

// TestDeepPagesThroughTheCache walks every page of a car of 3,000 parts
// through the caching store, as a client following page tokens does: the
// car is read page by page from PostgreSQL until the doorkeeper admits it,
// then from memory; the pages together are the car's parts, once each, in
// id order.
func TestDeepPagesThroughTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, pool := setup(t, cache.Options{MaxParts: 10_000})
	want := deepCar(t, pool, 3000)
	svc := catalog.NewService(c)
	for round := range 3 { // the first page from PostgreSQL, the next admits and loads the car, then from memory
		var got []int64
		token := ""
		for {
			page, err := svc.ListParts(ctx, catalog.PartsQuery{Car: "deep", PageSize: 100, PageToken: token})
			if err != nil {
				t.Fatalf("round %d, after %d parts: %v", round, len(got), err)
			}
			for _, p := range page.Parts {
				got = append(got, p.ID)
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: %d parts walked, want %d (first difference at %d)", round, len(got), len(want), firstDiff(got, want))
		}
	}
}

// deepCar inserts car "deep" with n parts interleaved with another car's
// and every 7th retired; it returns the ids a client must see, in order.
func deepCar(t *testing.T, pool *pgxpool.Pool, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('deep', 'Deep', 2020, 2024), ('other', 'Other', 2020, 2024)`,
		`INSERT INTO catalog.parts (car_id, name, category, price_minor)
		 SELECT CASE WHEN g % 2 = 0 THEN 'deep' ELSE 'other' END, 'Part ' || g, 'engine', 100 * g
		 FROM generate_series(1, $1::int * 2) AS g`,
		`UPDATE catalog.parts SET retired_at = now() WHERE car_id = 'deep' AND id % 7 = 0`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{n}
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT id FROM catalog.parts WHERE car_id = 'deep' AND retired_at IS NULL ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
