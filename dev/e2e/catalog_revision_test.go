package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
)

// revisionBound is the longest a committed catalog change may take to reach
// a WatchRevision stream before the test calls it lost: a hang detector
// (the figures, a few milliseconds on loopback, are logged), below the
// caches' 30 s TTL, which would hide a lost notification.
const revisionBound = stateBound

// recvRevision receives the next WatchRevision message within d.
func recvRevision(t *testing.T, s grpc.ServerStreamingClient[catalogv1.CatalogRevision], d time.Duration) (*catalogv1.CatalogRevision, error) {
	t.Helper()
	type result struct {
		m   *catalogv1.CatalogRevision
		err error
	}
	c := make(chan result, 1)
	go func() { m, err := s.Recv(); c <- result{m, err} }()
	select {
	case r := <-c:
		return r.m, r.err
	case <-time.After(d):
		t.Fatalf("no WatchRevision message within %s", d)
		return nil, nil
	}
}

// watchLive opens a WatchRevision stream and returns it with the first live
// revision it reports (the first message, unless the catalog's listener is
// still connecting).
func watchLive(t *testing.T, ctx context.Context, conn *grpc.ClientConn) (grpc.ServerStreamingClient[catalogv1.CatalogRevision], int64) {
	t.Helper()
	stream, err := catalogv1.NewCatalogServiceClient(conn).WatchRevision(ctx, &catalogv1.WatchRevisionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := recvRevision(t, stream, 10*time.Second)
		if err != nil {
			t.Fatalf("WatchRevision: %v", err)
		}
		if m.GetLive() {
			return stream, m.GetRevision()
		}
		t.Logf("WatchRevision: %v (not live yet)", m)
	}
}

func dbRevision(t *testing.T, ctx context.Context, db *pgx.Conn) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(ctx, "SELECT n FROM catalog.revision").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCatalogRevision drives the revision contract over the network: the
// stream reports the database's revision at once, every committed UPDATE of
// a part reaches it as a larger revision within revisionBound, and every
// read method then answers that revision in its catalog-revision header.
//
// Not parallel: the UPDATEs bump the revision, which caches in front of the
// catalog (the gateway's) react to; sequential tests run alone.
func TestCatalogRevision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := dial(t, sys.Addrs.Catalog)
	db, err := pgx.Connect(ctx, sys.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())

	stream, rev := watchLive(t, ctx, conn)
	if want := dbRevision(t, ctx, db); rev > want {
		// Revisions only grow, unless catalog.revision was dropped and
		// created again under the running catalog (goose down and up of
		// migration 00005, as the README's goose block does): the catalog
		// is not told and ignores the lower numbers that follow.
		t.Fatalf("initial revision %d, above the database's %d: catalog.revision was re-created under the running catalog (a goose down/up on this database, e.g. TestREADMEExamples in an earlier -count round)", rev, want)
	} else if rev != want {
		t.Errorf("initial revision %d, want the database's %d", rev, want)
	}

	// Each UPDATE rewrites a part with its own values: a real catalog write
	// (the trigger fires) that changes nothing other tests could see.
	const updates = 20
	var latencies, commits []time.Duration
	for range updates {
		start := time.Now()
		if _, err := db.Exec(ctx, "UPDATE catalog.parts SET price_minor = price_minor WHERE id = 13"); err != nil {
			t.Fatal(err)
		}
		commits = append(commits, time.Since(start))
		m, err := recvRevision(t, stream, revisionBound)
		if err != nil {
			t.Fatalf("WatchRevision after an UPDATE: %v", err)
		}
		// From sending the UPDATE (autocommit) to holding the message: an
		// upper bound on commit → message.
		latencies = append(latencies, time.Since(start))
		if !m.GetLive() || m.GetRevision() <= rev {
			t.Fatalf("after an UPDATE at revision %d: got %v, want a larger live revision", rev, m)
		}
		if want := dbRevision(t, ctx, db); m.GetRevision() != want {
			t.Errorf("stream revision %d, database's %d", m.GetRevision(), want)
		}
		rev = m.GetRevision()
	}
	slices.Sort(latencies)
	slices.Sort(commits)
	t.Logf("UPDATE sent → WatchRevision message, %d UPDATEs: min %s, median %s, p90 %s, max %s (bound %s; the UPDATE alone: median %s)",
		updates, latencies[0], latencies[updates/2], latencies[updates*9/10], latencies[updates-1], revisionBound, commits[updates/2])

	want := []string{strconv.FormatInt(rev, 10)}
	v1 := catalogv1.NewCatalogServiceClient(conn)
	compat := catalogopb.NewCatalogoServiceClient(conn)
	for name, call := range map[string]func(h *metadata.MD) error{
		"ListCars": func(h *metadata.MD) error {
			_, err := v1.ListCars(ctx, &catalogv1.ListCarsRequest{}, grpc.Header(h))
			return err
		},
		"ListParts": func(h *metadata.MD) error {
			_, err := v1.ListParts(ctx, &catalogv1.ListPartsRequest{CarId: "civic"}, grpc.Header(h))
			return err
		},
		"BatchGetParts": func(h *metadata.MD) error {
			_, err := v1.BatchGetParts(ctx, &catalogv1.BatchGetPartsRequest{Ids: []string{"13"}}, grpc.Header(h))
			return err
		},
		"GetPecas": func(h *metadata.MD) error {
			_, err := compat.GetPecas(ctx, &catalogopb.Carro{Modelo: "Civic", Ano: 2023}, grpc.Header(h))
			return err
		},
	} {
		var h metadata.MD
		if err := call(&h); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := h.Get("catalog-revision"); !slices.Equal(got, want) {
			t.Errorf("%s: catalog-revision %q, want %q", name, got, want)
		}
	}
}

// TestCatalogRevisionDrain sends SIGTERM to the catalog while a
// WatchRevision stream is open: the stream must end cleanly and the drain
// must not wait for it (the catalog logs "drained in-flight calls", not
// "drain timed out", which it would after its 15 s SHUTDOWN_TIMEOUT); then
// the catalog is started again and the stack waits until it serves through
// the gateway. The times are logged.
//
// Not parallel: the catalog is down for a moment.
func TestCatalogRevisionDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := dial(t, sys.Addrs.Catalog)
	stream, _ := watchLive(t, ctx, conn)

	type end struct {
		err  error
		took time.Duration
	}
	ended := make(chan end, 1)
	start := time.Now()
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				ended <- end{err, time.Since(start)}
				return
			}
		}
	}()
	drained, timedOut := catalogLogCount("drained in-flight calls"), catalogLogCount("drain timed out")
	stopErr := sys.StopService("catalog", 20*time.Second)
	exited := time.Since(start)
	restartErr := sys.Restart("catalog")
	if stopErr != nil {
		t.Errorf("SIGTERM with an open WatchRevision stream: %v", stopErr)
	}
	if restartErr != nil {
		t.Fatalf("restart catalog: %v", restartErr)
	}
	select {
	case e := <-ended:
		t.Logf("SIGTERM → stream ended in %s, process exited in %s", e.took, exited)
		if !errors.Is(e.err, io.EOF) {
			t.Errorf("stream ended with %v, want a clean end (io.EOF)", e.err)
		}
	case <-time.After(stateBound):
		t.Errorf("stream still open %v after the catalog exited (%s)", stateBound, exited)
	}
	if catalogLogCount("drain timed out") != timedOut || catalogLogCount("drained in-flight calls") != drained+1 {
		t.Errorf("the catalog's drain waited for the WatchRevision stream until its timeout (exit %s after SIGTERM); want the stream ended by the drain:\n%s",
			exited, lastLogLines(sys.Logs(), "[catalog]", 10))
	}

	// Back: the restarted catalog is live again, and the gateway serves
	// catalog reads again, before the next test.
	deadline := time.Now().Add(60 * time.Second)
	for {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := catalogv1.NewCatalogServiceClient(conn).WatchRevision(wctx, &catalogv1.WatchRevisionRequest{})
		var m *catalogv1.CatalogRevision
		if err == nil {
			m, err = s.Recv()
		}
		wcancel()
		if err == nil && m.GetLive() {
			resp, herr := http.Get(sys.GatewayURL + "/v1/cars")
			if herr == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("catalog not serving again 60s after the restart (last: %v, %v)", m, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// catalogLogCount counts the stack catalog's log lines containing msg.
func catalogLogCount(msg string) int {
	n := 0
	for _, line := range strings.Split(sys.Logs(), "\n") {
		if strings.HasPrefix(line, "[catalog]") && strings.Contains(line, msg) {
			n++
		}
	}
	return n
}

// lastLogLines returns the last n lines of logs that start with prefix.
func lastLogLines(logs, prefix string, n int) string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}
