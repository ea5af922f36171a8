// Package database opens the pgx pool of a service, instruments it (pool
// statistics and a query-duration histogram per named query) and bounds
// every statement on the server side.
//
// A query is named by a leading SQL comment, as in sqlc:
//
//	const listParts = `-- name: list_parts
//	SELECT ...`
package database

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultStatementTimeout is the server-side bound of every statement of a
// service pool, unless the URL sets statement_timeout itself. Callers'
// contexts already cancel their queries much sooner (backend deadlines are
// seconds); this also holds when a cancel request is lost.
const DefaultStatementTimeout = 10 * time.Second

// Options tune the pool. Zero values keep pgx's defaults.
type Options struct {
	MaxConns int32
	MinConns int32
	// PingTimeout bounds the start-up ping (default 2 s).
	PingTimeout time.Duration
}

// Open creates the pool for url and registers its metrics on reg. It pings
// the database once; an unreachable database is logged, not fatal, because
// the service reports NOT_SERVING until the database answers (in Kubernetes
// the database may start after the service).
func Open(ctx context.Context, url string, opts Options, log *slog.Logger, reg prometheus.Registerer) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if _, set := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !set {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(DefaultStatementTimeout.Milliseconds())
	}
	tracer := newQueryTracer()
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	if reg != nil {
		if err := reg.Register(tracer.hist); err != nil {
			pool.Close()
			return nil, fmt.Errorf("register query metrics: %w", err)
		}
		if err := reg.Register(newPoolCollector(pool)); err != nil {
			pool.Close()
			return nil, fmt.Errorf("register pool metrics: %w", err)
		}
	}
	timeout := opts.PingTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		log.Warn("database not reachable yet; readiness stays off until it answers", "err", err)
	} else {
		log.Info("database reachable", "host", cfg.ConnConfig.Host, "database", cfg.ConnConfig.Database, "max_conns", cfg.MaxConns)
	}
	return pool, nil
}

// QueryName returns the name of a query from its leading "-- name: x"
// comment, or "unnamed".
func QueryName(sql string) string {
	const prefix = "-- name: "
	if !strings.HasPrefix(sql, prefix) {
		return "unnamed"
	}
	rest := sql[len(prefix):]
	if i := strings.IndexAny(rest, " \n\r\t"); i >= 0 {
		rest = rest[:i]
	}
	if rest == "" {
		return "unnamed"
	}
	return rest
}

type queryStartKey struct{}

type queryStart struct {
	name  string
	start time.Time
}

// queryTracer observes the duration of every query by name.
type queryTracer struct {
	hist *prometheus.HistogramVec
}

func newQueryTracer() *queryTracer {
	return &queryTracer{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "db_query_duration_seconds",
		Help:    "Duration of database queries by query name, including errors.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"query"})}
}

func (t *queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, queryStartKey{}, queryStart{name: QueryName(data.SQL), start: time.Now()})
}

func (t *queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	qs, ok := ctx.Value(queryStartKey{}).(queryStart)
	if !ok {
		return
	}
	t.hist.WithLabelValues(qs.name).Observe(time.Since(qs.start).Seconds())
}

// poolCollector exposes pgxpool.Stat as Prometheus metrics at scrape time.
type poolCollector struct {
	pool                                                                                    *pgxpool.Pool
	acquired, idle, total, max, acquireCount, emptyAcquire, emptyWait, acquireDur, canceled *prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &poolCollector{
		pool:         pool,
		acquired:     d("pgxpool_acquired_conns", "Connections currently acquired from the pool."),
		idle:         d("pgxpool_idle_conns", "Idle connections in the pool."),
		total:        d("pgxpool_total_conns", "Connections in the pool (acquired, idle and being built)."),
		max:          d("pgxpool_max_conns", "Maximum size of the pool."),
		acquireCount: d("pgxpool_acquire_count_total", "Successful acquires from the pool."),
		emptyAcquire: d("pgxpool_empty_acquire_count_total", "Acquires that had to wait because the pool was empty."),
		emptyWait:    d("pgxpool_empty_acquire_wait_seconds_total", "Time spent waiting by acquires that found the pool empty."),
		acquireDur:   d("pgxpool_acquire_duration_seconds_total", "Total time spent acquiring connections."),
		canceled:     d("pgxpool_canceled_acquire_count_total", "Acquires canceled by their context."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.max, c.acquireCount, c.emptyAcquire, c.emptyWait, c.acquireDur, c.canceled} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.total, float64(s.TotalConns()))
	g(c.max, float64(s.MaxConns()))
	n(c.acquireCount, float64(s.AcquireCount()))
	n(c.emptyAcquire, float64(s.EmptyAcquireCount()))
	n(c.emptyWait, s.EmptyAcquireWaitTime().Seconds())
	n(c.acquireDur, s.AcquireDuration().Seconds())
	n(c.canceled, float64(s.CanceledAcquireCount()))
}
