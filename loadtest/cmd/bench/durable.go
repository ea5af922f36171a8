package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/migrations/pgboot"

	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/loadtest/internal/procmon"
	"github.com/carbuild/carbuild/loadtest/internal/report"
	"github.com/carbuild/carbuild/loadtest/internal/scenario"
)

// The durable-orders phase is target 3 of issue 17: orders alone, open
// model, at constant rates, against a PostgreSQL that keeps a confirmed
// order through a crash (fsync and synchronous_commit on). Per step it
// reports the client's latency and errors, the orders confirmed against the
// rows stored under the step's keys (every confirmed order stored, each key
// once), and what an order cost the database: commits of the stack's
// database (pg_stat_database.xact_commit), WAL flushes and bytes
// (pg_stat_wal, which is server-wide: other databases on the same server
// count too) and, when pricing batches its inserts, the orders per batch
// (carbuild_order_batch_size).

// durableStatsSettle is the wait after a step before the database's
// counters are read: a PostgreSQL 15 backend reports its statistics at most
// once a second while busy and 10 s after it went idle.
const durableStatsSettle = 11 * time.Second

// durableSeries names the phase's series in the report.
const durableSeries = "durable-orders"

// durableFlags registers the phase's flags on fs.
func durableFlags(fs *flag.FlagSet, c *config) {
	fs.Func("durable-orders-rates", "durable-orders phase (issue 17 target 3): offered orders/s, rising (empty skips the phase; default 500,1000,2000,3000)", func(v string) error {
		c.durableRates = nil
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r == "" {
				continue
			}
			n, err := strconv.Atoi(r)
			if err != nil || n <= 0 {
				return fmt.Errorf("%q is not a positive integer", r)
			}
			c.durableRates = append(c.durableRates, n)
		}
		if !slices.IsSorted(c.durableRates) {
			return errors.New("rates must rise")
		}
		c.durableSet = true
		return nil
	})
	fs.DurationVar(&c.durableStep, "durable-orders-duration", 10*time.Second, "durable-orders phase: length of each step")
	fs.BoolVar(&c.durableDB, "durable-db", false, "run the started stack on a private PostgreSQL of its own on disk (os.TempDir), booted with fsync, synchronous_commit and full_page_writes on: its WAL flushes are the stack's alone, not shared with other databases of a server (their WAL would be flushed with our commits)")
}

// privateDurableDB boots a private durable PostgreSQL on disk and creates
// the stack's database on it; stop shuts the server down.
func privateDurableDB(ctx context.Context, log *slog.Logger) (url string, stop func(), err error) {
	srv, err := pgboot.FindWith(ctx, log, pgboot.FindOptions{SkipEnv: true, SkipLocal: true, Durable: true, Dir: os.TempDir()})
	if err != nil {
		return "", nil, fmt.Errorf("-durable-db: %w", err)
	}
	url, err = pgboot.CreateDatabase(ctx, srv.URL, "carbuild_bench")
	if err != nil {
		srv.Close()
		return "", nil, fmt.Errorf("-durable-db: %w", err)
	}
	return url, srv.Close, nil
}

// durableRatesOrDefault is the phase's rates: the flag's, else the issue's.
func (c *config) durableRatesOrDefault() []int {
	if c.durableSet {
		return c.durableRates
	}
	return []int{500, 1000, 2000, 3000}
}

// pgCounters are the database's cumulative counters at one moment.
type pgCounters struct {
	commits  int64   // xact_commit of the stack's database
	walSync  int64   // WAL flushes (fdatasync here), whole server
	walWrite int64   // WAL writes, whole server
	walBytes float64 // whole server
}

func readPGCounters(ctx context.Context, conn *pgx.Conn) (pgCounters, error) {
	var c pgCounters
	err := conn.QueryRow(ctx, `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
       wal_sync, wal_write, wal_bytes::float8 FROM pg_stat_wal`).Scan(&c.commits, &c.walSync, &c.walWrite, &c.walBytes)
	return c, err
}

// durability reads the settings that decide whether a confirmed order
// survives a crash, as the stack's database sees them (a database or role
// override would show here), and says what is off.
func durability(ctx context.Context, conn *pgx.Conn) (settings string, problems []string, err error) {
	want := []struct{ name, want string }{{"fsync", "on"}, {"synchronous_commit", "on"}, {"full_page_writes", "on"}, {"wal_sync_method", ""}, {"commit_delay", ""}}
	var parts []string
	for _, w := range want {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", w.name).Scan(&v); err != nil {
			return "", nil, err
		}
		parts = append(parts, w.name+"="+v)
		if w.want != "" && v != w.want {
			problems = append(problems, fmt.Sprintf("%s is %s, want %s", w.name, v, w.want))
		}
	}
	// Overrides for the services' roles on this database.
	rows, err := conn.Query(ctx, `SELECT coalesce(r.rolname, '*'), s.setconfig::text FROM pg_db_role_setting s
LEFT JOIN pg_roles r ON r.oid = s.setrole
WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
  AND array_to_string(s.setconfig, ',') ~ '(fsync|synchronous_commit)='`)
	if err != nil {
		return "", nil, err
	}
	for rows.Next() {
		var role, cfg string
		if err := rows.Scan(&role, &cfg); err != nil {
			rows.Close()
			return "", nil, err
		}
		problems = append(problems, fmt.Sprintf("role %s overrides %s", role, cfg))
	}
	rows.Close()
	return strings.Join(parts, ", "), problems, rows.Err()
}

// durableStep is one step's figures beside its load.Stats.
type durableStep struct {
	rate                            int
	confirmed, stored, distinctKeys int
	missing                         int // confirmed but not stored: must be 0
	unconfirmed                     int // stored without a 2xx (answered after the client's timeout, or an error)
	duplicateIDs                    int // one id confirmed twice: must be 0
	commits, walSyncs, walWrites    float64
	walBytes                        float64
	batches, batchedOrders          float64 // from pricing's metrics; 0 when it does not batch
	pgCPU                           float64 // CPU seconds of the PostgreSQL server's processes (-durable-db only)
	pgCPUMeasured                   bool
	loadAvg                         string
	counted                         bool
	countErr                        string
}

// runDurable runs the phase and adds its series, section, plot and target
// to b.
func runDurable(ctx context.Context, client *http.Client, cfg *config, b *report.Bench, dir, stackURL string, pprofURLs map[string]string,
	baskets []*scenario.Basket, sampler *procmon.Sampler, prog *load.Progress) error {
	pricingMetrics := pprofURLs["pricing"] // its operations listener: /metrics and /debug/pprof/
	rates := cfg.durableRatesOrDefault()
	if len(rates) == 0 {
		return nil
	}
	if cfg.durableDB {
		b.Config["database"] = "-durable-db: a private PostgreSQL of the stack's own on disk (" + os.TempDir() + "), fsync, synchronous_commit and full_page_writes on"
	}
	if err := scenario.Quote(ctx, client, stackURL, baskets); err != nil {
		return fmt.Errorf("durable orders: preparing the baskets: %w", err)
	}
	var conn *pgx.Conn
	settings, problems := "not read (no database URL)", []string{"the database was not checked"}
	if cfg.databaseURL != "" {
		var err error
		if conn, err = pgx.Connect(ctx, cfg.databaseURL); err != nil {
			return fmt.Errorf("durable orders: %w", err)
		}
		defer conn.Close(context.Background())
		if settings, problems, err = durability(ctx, conn); err != nil {
			return fmt.Errorf("durable orders: reading the settings: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "== open model: %s (%s)\n", durableSeries, settings)
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "   NOT DURABLE: %s\n", p)
	}
	s := &report.Series{Name: durableSeries, What: "POST /v1/orders alone through the stack, each with a fresh idempotency key and the quoted total; database: " + settings + "."}
	b.Series = append(b.Series, s)
	var steps []durableStep
	for _, rate := range rates {
		if ctx.Err() != nil {
			s.StoppedWhy = "run interrupted or -max-duration reached"
			break
		}
		orders := scenario.NewOrders(fmt.Sprintf("bench-%s-d%d-", b.RunID, rate))
		sc := scenario.Mixed(durableSeries, stackURL, baskets, orders, []string{scenario.KindOrder})
		d := durableStep{rate: rate}
		var before pgCounters
		var beforeErr error
		if conn != nil {
			before, beforeErr = readPGCounters(ctx, conn)
		}
		batches0, _ := scrapeCounters(ctx, client, pricingMetrics, "carbuild_order_batch_size_count", "carbuild_order_batch_size_sum")
		var cpu0 float64
		cpuOK := false
		if conn != nil && cfg.durableDB { // a server of our own: all its processes work for the stack
			cpu0, cpuOK = serverCPU(ctx, conn)
		}
		var profWG sync.WaitGroup
		if cfg.pprof && rate == 2000 {
			capture(ctx, &profWG, b, dir, pprofURLs, fmt.Sprintf("durable orders at %d req/s", rate), cfg.durableStep-time.Second)
		}
		from := time.Now()
		stats, err := load.Open(ctx, client, sc, rate, cfg.durableStep, cfg.maxInFlight, prog)
		profWG.Wait()
		if err != nil {
			s.StoppedWhy = fmt.Sprintf("step %d/s: %v", rate, err)
			break
		}
		cpu := sampler.Usage(stats.Started, stats.Ended)
		mem := sampler.Peak(from, time.Now())
		d.loadAvg = loadAvg()
		printStats(fmt.Sprintf("%s %d/s", durableSeries, rate), stats)
		printCPU(cpu)
		if cpuOK {
			if cpu1, ok := serverCPU(ctx, conn); ok {
				d.pgCPU, d.pgCPUMeasured = cpu1-cpu0, true
			}
		}
		if !sleep(ctx, durableStatsSettle) {
			s.StoppedWhy = "run interrupted or -max-duration reached"
			break
		}
		batches1, _ := scrapeCounters(ctx, client, pricingMetrics, "carbuild_order_batch_size_count", "carbuild_order_batch_size_sum")
		d.batches = batches1["carbuild_order_batch_size_count"] - batches0["carbuild_order_batch_size_count"]
		d.batchedOrders = batches1["carbuild_order_batch_size_sum"] - batches0["carbuild_order_batch_size_sum"]
		if conn != nil && beforeErr == nil {
			if after, err := readPGCounters(ctx, conn); err == nil {
				d.commits = float64(after.commits - before.commits)
				d.walSyncs = float64(after.walSync - before.walSync)
				d.walWrites = float64(after.walWrite - before.walWrite)
				d.walBytes = after.walBytes - before.walBytes
				d.counted = true
			} else {
				d.countErr = err.Error()
			}
			d.countStored(ctx, conn, orders)
		}
		d.confirmed = orders.Count()
		fmt.Fprintf(os.Stderr, "      orders: %d confirmed, %d stored (%d keys), %d missing, %d stored without a 2xx; per order: %.2f commits, %.2f WAL flushes (server-wide), %.0f WAL bytes, %.0f µs PostgreSQL CPU; load %s\n",
			d.confirmed, d.stored, d.distinctKeys, d.missing, d.unconfirmed, per(d.commits, d.stored), per(d.walSyncs, d.stored), per(d.walBytes, d.stored), 1e6*per(d.pgCPU, d.stored), d.loadAvg)
		stats.Extra = map[string]float64{
			"confirmed": float64(d.confirmed), "stored": float64(d.stored), "distinct_keys": float64(d.distinctKeys),
			"missing": float64(d.missing), "stored_without_2xx": float64(d.unconfirmed), "duplicate_ids": float64(d.duplicateIDs),
			"commits": d.commits, "wal_syncs_server": d.walSyncs, "wal_writes_server": d.walWrites, "wal_bytes_server": d.walBytes,
			"batches": d.batches, "batched_orders": d.batchedOrders, "postgres_cpu_seconds": d.pgCPU,
		}
		s.Steps = append(s.Steps, stats)
		s.Memory = append(s.Memory, mem)
		s.CPU = append(s.CPU, cpu)
		steps = append(steps, d)
		if stats.ErrorRatio > 0.50 {
			s.StoppedWhy = fmt.Sprintf("at %d orders/s errors %.1f %% > 50 %%: higher rates would only measure a drowning stack", rate, 100*stats.ErrorRatio)
			break
		}
	}
	if s.StoppedWhy == "" {
		s.StoppedWhy = fmt.Sprintf("every rate offered (%v orders/s)", rates)
	}
	b.Sections = append(b.Sections, report.Section{Title: "Durable orders (issue 17 target 3)", Body: durableMarkdown(settings, problems, s, steps, cfg.durableStep)})
	if f, err := durablePlot(dir, steps); err != nil {
		b.Notes = append(b.Notes, "durable-orders plot: "+err.Error())
	} else {
		b.Notes = append(b.Notes, "durable-orders: WAL flushes and commits per order: "+f)
	}
	b.Targets = append(b.Targets, durableTarget(problems, s, steps))
	return nil
}

// countStored compares the rows stored under the step's key prefix with the
// orders the load was told about.
func (d *durableStep) countStored(ctx context.Context, conn *pgx.Conn, orders *scenario.Orders) {
	// Orders answered after the step ended are still in flight only if the
	// client gave up on them; the settle wait outlasts its timeout.
	rows, err := conn.Query(ctx, `SELECT id::text, idempotency_key FROM orders.orders WHERE starts_with(idempotency_key, $1)`, orders.KeyPrefix)
	if err != nil {
		d.countErr = err.Error()
		return
	}
	ids := map[string]bool{}
	keys := map[string]bool{}
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			rows.Close()
			d.countErr = err.Error()
			return
		}
		ids[id], keys[key] = true, true
		d.stored++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		d.countErr = err.Error()
		return
	}
	d.distinctKeys = len(keys)
	seen := map[string]bool{}
	for _, id := range orders.IDs() {
		if seen[id] {
			d.duplicateIDs++
		}
		seen[id] = true
		if !ids[id] {
			d.missing++
		}
	}
	d.unconfirmed = d.stored - (len(seen) - d.missing)
}

func per(x float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return x / float64(n)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// scrapeCounters reads the named unlabelled samples from a Prometheus text
// page (base + /metrics); missing names are absent from the map.
func scrapeCounters(ctx context.Context, client *http.Client, base string, names ...string) (map[string]float64, error) {
	m := map[string]float64{}
	if base == "" {
		return m, errors.New("no metrics URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
	if err != nil {
		return m, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}

func durableMarkdown(settings string, problems []string, s *report.Series, steps []durableStep, stepDur time.Duration) string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format+"\n", a...) }
	p("Database: %s.", settings)
	if len(problems) > 0 {
		p("")
		p("**Not durable: %s.** A confirmed order might not survive a crash; the target is not judged met.", strings.Join(problems, "; "))
	}
	p("")
	p("Orders alone, open model, each step %s. *stored* counts rows under the step's keys; *missing* are confirmed (2xx) orders not stored (must be 0); *stored without 2xx* were answered after the client's timeout or with an error. Commits are the stack database's; WAL flushes (`wal_sync`, one fdatasync each) and bytes are the whole server's, read %s after the step.", stepDur, durableStatsSettle)
	p("")
	p("| offered orders/s | ok/s | errors | P50 ms | P99 ms | max ms | confirmed | stored (keys) | missing | stored without 2xx | commits / order | WAL flushes / order | WAL bytes / order | orders / batch | PostgreSQL CPU µs / order | load average |")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for i, d := range steps {
		st := s.Steps[i]
		batch := "–"
		if d.batches > 0 {
			batch = fmt.Sprintf("%.2f (%.0f batches)", d.batchedOrders/d.batches, d.batches)
		}
		db := "–"
		if d.counted {
			db = ""
		}
		pgCPU := "– (only with -durable-db)"
		if d.pgCPUMeasured {
			pgCPU = fmt.Sprintf("%.0f", 1e6*per(d.pgCPU, d.stored))
		}
		p("| %d | %.0f | %d | %.2f | %.2f | %.2f | %d | %d (%d) | %d | %d | %s%.2f | %s%.3f | %s%.0f | %s | %s | %s |",
			d.rate, st.Achieved, st.Errors, st.Latency.P50, st.Latency.P99, st.Latency.Max, d.confirmed, d.stored, d.distinctKeys, d.missing, d.unconfirmed,
			db, per(d.commits, d.stored), db, per(d.walSyncs, d.stored), db, per(d.walBytes, d.stored), batch, pgCPU, d.loadAvg)
	}
	for _, d := range steps {
		if d.countErr != "" {
			p("")
			p("At %d orders/s the database could not be read: %s", d.rate, d.countErr)
		}
	}
	return w.String()
}

func durablePlot(dir string, steps []durableStep) (string, error) {
	var x, syncs, commits []float64
	for _, d := range steps {
		if !d.counted || d.stored == 0 {
			continue
		}
		x = append(x, float64(d.rate))
		syncs = append(syncs, per(d.walSyncs, d.stored))
		commits = append(commits, per(d.commits, d.stored))
	}
	c := report.Chart{
		Title:  "Durable orders: database work per stored order",
		XLabel: "offered (orders/s)", YLabel: "per order",
		Lines: []report.Line{{Name: "WAL flushes (server-wide)", X: x, Y: syncs}, {Name: "commits", X: x, Y: commits}},
	}
	f := filepath.Join(dir, durableSeries+"-wal.png")
	return f, c.Save(f)
}

func durableTarget(problems []string, s *report.Series, steps []durableStep) report.Target {
	t := report.Target{Name: "durable orders at a constant 2000 orders/s", Want: "P99 ≤ 20 ms, 0 errors, every confirmed order stored exactly once, fsync and synchronous_commit on"}
	for i, d := range steps {
		if d.rate != 2000 {
			continue
		}
		st := s.Steps[i]
		t.Got = fmt.Sprintf("P99 %.2f ms, %d errors of %d; %d confirmed, %d stored under %d keys, %d missing; %.3f WAL flushes per order",
			st.Latency.P99, st.Errors, st.Sent, d.confirmed, d.stored, d.distinctKeys, d.missing, per(d.walSyncs, d.stored))
		if len(problems) > 0 {
			t.Got += "; NOT DURABLE: " + strings.Join(problems, "; ")
		}
		t.Pass = len(problems) == 0 && st.Latency.P99 <= 20 && st.Errors == 0 && d.counted && d.missing == 0 &&
			d.duplicateIDs == 0 && d.stored == d.distinctKeys && d.confirmed > 0
		return t
	}
	t.Got = "not reached: " + s.StoppedWhy
	return t
}

// serverCPU returns the CPU time, in seconds, of the PostgreSQL server conn
// talks to, when it runs on this machine (ok false otherwise): its
// postmaster and every process it started, running or ended
// (procmon.TreeCPUSeconds).
func serverCPU(ctx context.Context, conn *pgx.Conn) (float64, bool) {
	postmaster, ok := postmasterOf(ctx, conn)
	if !ok {
		return 0, false
	}
	s, err := procmon.TreeCPUSeconds(postmaster)
	return s, err == nil
}

// watchDatabase adds the PostgreSQL server at databaseURL to the sampled
// processes as "postgres" when it runs on this machine, so that its CPU
// per request is reported beside the services' instead of among other
// processes'. A shared server's (not private) other work counts too.
func watchDatabase(ctx context.Context, b *report.Bench, s *procmon.Sampler, databaseURL string, private bool) {
	if databaseURL == "" {
		return
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	postmaster, ok := postmasterOf(ctx, conn)
	if !ok {
		return
	}
	s.WatchTree("postgres", postmaster)
	what := "the stack's private PostgreSQL server (-durable-db), every process"
	if !private {
		what = "the shared PostgreSQL server the stack's database is on, every process: its other databases' work counts too"
	}
	b.Config["cpu of postgres"] = what
}

// postmasterOf returns the postmaster of the PostgreSQL server conn talks
// to, when it runs on this machine.
func postmasterOf(ctx context.Context, conn *pgx.Conn) (int, bool) {
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, false
	}
	postmaster, err := procmon.Parent(backend)
	return postmaster, err == nil && postmaster > 1
}

// serverPIDs returns the postmaster of the PostgreSQL server conn talks to,
// then its processes (backends, WAL writer, checkpointer...), when it runs
// on this machine.
func serverPIDs(ctx context.Context, conn *pgx.Conn) ([]int, bool) {
	postmaster, ok := postmasterOf(ctx, conn)
	if !ok {
		return nil, false
	}
	children, err := procmon.Children(postmaster)
	if err != nil {
		return nil, false
	}
	return append([]int{postmaster}, children...), true
}
