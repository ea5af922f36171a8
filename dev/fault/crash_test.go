package fault

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCrashCatalog kills catalog with SIGKILL under load: requests fail only
// while it is down, each with a clear 503 well within the deadline (never a
// hang), and everything recovers after catalog alone is started again —
// gateway and pricing keep running, their connections reconnect.
func TestCrashCatalog(t *testing.T) {
	s := startStack(t, stackConfig())
	gatewayPID, pricingPID := s.Process("gateway").PID(), s.Process("pricing").PID()

	l := startLoad(loadConfig{Rate: 200, Targets: fixed(s.GatewayURL), Next: mix(false)})
	stopped := false
	defer func() {
		if !stopped {
			l.stop()
		}
	}()
	l.waitResults(t, "requests before the kill", 100, okAfter(time.Time{}, ""))

	killAt := time.Now()
	cat := s.Process("catalog")
	if err := cat.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cat.Wait()
	// Down until the fault shows: requests fail (and keep failing fast).
	l.waitResults(t, "failed requests while catalog is dead", 100, func(r result) bool { return !r.ok() && r.start.After(killAt) })
	restartAt := time.Now()
	if err := s.Restart("catalog"); err != nil {
		t.Fatal(err)
	}
	ready := waitFor(loadBound, func() bool { st, _ := httpGet(s.GatewayURL + "/readyz"); return st == http.StatusOK })
	readyAt := time.Now()
	if ready {
		// The recovered system under the same load: every kind of request
		// of the mix succeeds again, then a stretch of requests follows.
		for _, kind := range []string{"cars", "parts", "quote", "compat"} {
			l.waitResults(t, kind+" succeeds after the restart", 1, func(r result) bool { return r.ok() && r.kind == kind && r.start.After(readyAt) })
		}
		l.waitResults(t, "requests after the recovery", 200, okAfter(readyAt, ""))
	}
	rs := l.stop()
	stopped = true
	if !ready {
		t.Fatalf("gateway not ready %v after catalog restarted", loadBound)
	}

	sum := summarize(rs)
	recovered := recoveredAt(rs, restartAt)
	t.Logf("crash (kill -9 catalog, down %s): %s", restartAt.Sub(killAt).Round(time.Millisecond), sum)
	if !recovered.IsZero() {
		t.Logf("crash: recovered-after %s from restart (/readyz 200 after %s); pricing and gateway not restarted",
			recovered.Sub(restartAt).Round(time.Millisecond), readyAt.Sub(restartAt).Round(time.Millisecond))
	}

	if recovered.IsZero() {
		t.Errorf("requests still fail at the end of the run: no full recovery after the restart")
	}
	var slowest time.Duration
	for _, r := range rs {
		if r.ok() {
			continue
		}
		if r.end.Before(killAt) {
			if r.timedOut() {
				// Not the fault: a call that outlasted its deadline on a
				// stalled machine before the kill (as in TestDatabaseRestart).
				t.Logf("before the kill, a call outlasted its deadline (a stalled machine, not the fault): %s", r)
				continue
			}
			t.Errorf("failure before the kill: %s", r)
		}
		// A clear 503 UNAVAILABLE, not a 504: the caller did not wait for
		// its deadline (BACKEND_TIMEOUT 5 s) — it failed fast.
		if r.err != nil || r.status != http.StatusServiceUnavailable || jsonField(r.body, "status") != "UNAVAILABLE" {
			t.Errorf("want a clear 503 UNAVAILABLE, got %s", r)
		}
		if leaks(r.body) {
			t.Errorf("error answer leaks internal detail: %s", r.body)
		}
		if d := r.end.Sub(r.start); d > slowest {
			slowest = d
		}
	}
	t.Logf("crash: slowest failed request %s (backend deadline 5s)", slowest.Round(time.Millisecond))
	if g, p := s.Process("gateway"), s.Process("pricing"); g.Exited() || p.Exited() || g.PID() != gatewayPID || p.PID() != pricingPID {
		t.Errorf("gateway or pricing was restarted or died")
	}
}

// leaks reports whether an error body shows internal detail: addresses,
// driver or transport messages.
func leaks(body string) bool {
	b := strings.ToLower(body)
	for _, s := range []string{"127.0.0.1", "localhost", "dial tcp", "connection refused", "sqlstate", "pgx", "postgres", "transport:", "goroutine", ".go:"} {
		if strings.Contains(b, s) {
			return true
		}
	}
	return false
}
