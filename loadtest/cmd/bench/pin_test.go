package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/carbuild/carbuild/loadtest/internal/procmon"
	"github.com/carbuild/carbuild/loadtest/internal/report"
)

// TestPinServer boots a private PostgreSQL, as -durable-db does, moves it
// to one CPU and checks that every process of the server, and a backend
// forked after the move, may run on that CPU only.
func TestPinServer(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a PostgreSQL server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	if all.Count() < 2 {
		t.Skip("one CPU: every process is on it already, pinning shows nothing")
	}
	cpu := -1
	for c := range 1024 {
		if all.IsSet(c) {
			cpu = c // the last CPU this process may use: rarely the one the server had
		}
	}
	url, stop, err := privateDurableDB(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	n, err := pinServer(ctx, url, cpu)
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 { // the postmaster, its background processes, our backend
		t.Fatalf("moved %d processes, want the postmaster and its children", n)
	}
	conn, err := pgx.Connect(ctx, url) // a backend forked after the move
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	// Not as many as were moved: a short-lived process (the move's own
	// backend, an autovacuum worker) may have ended meanwhile.
	pids, ok := serverPIDs(ctx, conn)
	if !ok || len(pids) < 3 {
		t.Fatalf("server processes %v (ok %v), want the postmaster and its children", pids, ok)
	}
	sawBackend := false
	for _, pid := range pids {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(pid, &set); err != nil {
			continue // ended meanwhile
		}
		if set.Count() != 1 || !set.IsSet(cpu) {
			t.Errorf("process %d may run on %d CPUs, want CPU %d only", pid, set.Count(), cpu)
		}
		sawBackend = sawBackend || pid == backend
	}
	if !sawBackend {
		t.Errorf("the new backend %d is not among the server's processes %v", backend, pids)
	}
}

// TestWatchDatabase boots a private PostgreSQL and checks that the sampler
// reports its CPU as "postgres", backends that ended included: the work is
// done on connections closed before the last sample.
func TestWatchDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a PostgreSQL server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url, stop, err := privateDurableDB(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	b := &report.Bench{Config: map[string]string{}}
	s := procmon.NewSampler(map[string]int{})
	watchDatabase(ctx, b, s, url, true)
	if b.Config["cpu of postgres"] == "" {
		t.Fatal("watchDatabase did not watch the server")
	}
	from := time.Now()
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go s.Run(sctx, 10*time.Millisecond) // samples at once, then every 10 ms
	meter, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer meter.Close(context.Background())
	c0, ok := serverCPU(ctx, meter)
	if !ok {
		t.Fatal("serverCPU: the server is not measured")
	}
	// Work on short connections until the server has used 0.1 s of CPU.
	for c := c0; c-c0 < 0.1; c, _ = serverCPU(ctx, meter) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SELECT count(*) FROM generate_series(1, 200000)"); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
	}
	// A sample taken after the work.
	for n := len(s.Samples()); len(s.Samples()) <= n+1; {
		time.Sleep(5 * time.Millisecond)
	}
	scancel()
	elapsed := time.Since(from).Seconds()
	u := s.Usage(from, time.Now())
	// The connections' backends ended: their time is counted once they are
	// reaped, which the postmaster does at once; allow for a last one.
	if got, want := u.Process["postgres"], 100*0.05/elapsed; got < want {
		t.Errorf("postgres CPU = %.1f %% over %.2f s, want at least %.1f %% (0.05 s)", got, elapsed, want)
	}
}
