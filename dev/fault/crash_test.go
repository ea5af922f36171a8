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
	time.Sleep(1500 * time.Millisecond)

	killAt := time.Now()
	cat := s.Process("catalog")
	if err := cat.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cat.Wait()
	time.Sleep(2 * time.Second)
	restartAt := time.Now()
	if err := s.Restart("catalog"); err != nil {
		t.Fatal(err)
	}
	ready := waitFor(30*time.Second, func() bool { st, _ := httpGet(s.GatewayURL + "/readyz"); return st == http.StatusOK })
	readyAt := time.Now()
	time.Sleep(2 * time.Second) // the recovered system under the same load
	rs := l.stop()
	stopped = true
	if !ready {
		t.Fatalf("gateway not ready 30 s after catalog restarted")
	}

	sum := summarize(rs)
	recovered := recoveredAt(rs, restartAt)
	t.Logf("crash (kill -9 catalog, down %s): %s", restartAt.Sub(killAt).Round(time.Millisecond), sum)
	if !recovered.IsZero() {
		t.Logf("crash: recovered-after %s from restart (/readyz 200 after %s); pricing and gateway not restarted",
			recovered.Sub(restartAt).Round(time.Millisecond), readyAt.Sub(restartAt).Round(time.Millisecond))
	}

	if sum.failed == 0 {
		t.Fatalf("no request failed while catalog was dead: the fault was not injected")
	}
	if recovered.IsZero() || recovered.Sub(restartAt) > 10*time.Second {
		t.Errorf("no full recovery within 10 s of the restart (recovered at %v)", recovered)
	}
	var slowest time.Duration
	for _, r := range rs {
		if r.ok() {
			continue
		}
		if r.end.Before(killAt) {
			t.Errorf("failure before the kill: %s", r)
		}
		if !recovered.IsZero() && r.start.After(recovered) {
			t.Errorf("failure after recovery: %s", r)
		}
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
	if slowest > 2*time.Second {
		t.Errorf("a failed request took %s: callers wait instead of failing fast", slowest)
	}
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
