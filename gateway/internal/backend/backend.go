// Package backend tracks whether the gateway's backends are serving, by
// polling their grpc.health.v1 service in the background, so that /readyz and
// /health answer from memory in constant time, even under load.
package backend

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	gatewayv1 "github.com/carbuild/carbuild/shared/gen/carbuild/gateway/v1"
)

// Watcher polls the health of named backends.
type Watcher struct {
	gatewayv1.UnimplementedGatewayServiceServer

	log      *slog.Logger
	interval time.Duration
	clients  map[string]healthpb.HealthClient

	mu       sync.RWMutex
	statuses map[string]string
	failures map[string]int // consecutive failed checks
	stopping bool
}

// failuresToDown is how many checks in a row must fail before a backend that
// was SERVING counts as down: one slow check under overload is not an outage.
const failuresToDown = 3

// checksPerPoll bounds the Checks of one poll. A backend's connection
// balances over every instance it knows, so one Check reaches one of them:
// while one instance of several is leaving (NOT_SERVING through its
// SHUTDOWN_DELAY, still serving), a single Check that lands on it would
// report the whole backend NOT_SERVING, and /readyz and /health flickered
// with it (every second or two on both surviving gateways in the Kind
// kill-pods step). So a NOT_SERVING answer is asked again, on the next
// instance the balancer picks: the backend serves if any of them says so.
// With every instance NOT_SERVING (one replica leaving, a database outage)
// the poll still says NOT_SERVING.
const checksPerPoll = 4

// NewWatcher watches each named connection's overall health ("" service).
func NewWatcher(log *slog.Logger, interval time.Duration, conns map[string]*grpc.ClientConn) *Watcher {
	w := &Watcher{log: log, interval: interval, clients: map[string]healthpb.HealthClient{}, statuses: map[string]string{}, failures: map[string]int{}}
	for name, c := range conns {
		w.clients[name] = healthpb.NewHealthClient(c)
		w.statuses[name] = "UNKNOWN"
	}
	return w
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Watcher) poll(ctx context.Context) {
	var wg sync.WaitGroup
	for name, c := range w.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, w.interval)
			defer cancel()
			resp, err := c.Check(cctx, &healthpb.HealthCheckRequest{})
			for i := 1; i < checksPerPoll && err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING; i++ {
				resp, err = c.Check(cctx, &healthpb.HealthCheckRequest{})
			}
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			prev := w.statuses[name]
			st := prev
			if err == nil {
				st = resp.GetStatus().String() // an answer, even NOT_SERVING from every Check, counts at once
				w.failures[name] = 0
			} else if w.failures[name]++; w.failures[name] >= failuresToDown || prev != healthpb.HealthCheckResponse_SERVING.String() {
				st = "UNREACHABLE"
			}
			w.statuses[name] = st
			w.mu.Unlock()
			if prev != st {
				w.log.Info("backend status changed", "backend", name, "from", prev, "to", st)
			}
		}()
	}
	wg.Wait()
}

// Statuses returns a copy of each backend's last status.
func (w *Watcher) Statuses() map[string]string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make(map[string]string, len(w.statuses))
	for k, v := range w.statuses {
		out[k] = v
	}
	return out
}

// Ready reports whether the gateway should receive traffic: not shutting
// down and every backend SERVING.
func (w *Watcher) Ready() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.stopping {
		return false
	}
	for _, st := range w.statuses {
		if st != healthpb.HealthCheckResponse_SERVING.String() {
			return false
		}
	}
	return true
}

// NotReady turns readiness off for good (shutdown has begun).
func (w *Watcher) NotReady() {
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
}

// NotServing lists the backends that are not SERVING, sorted.
func (w *Watcher) NotServing() []string {
	var out []string
	for name, st := range w.Statuses() {
		if st != healthpb.HealthCheckResponse_SERVING.String() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Health implements the earlier system's GET /health: "healthy" when every
// backend serves; the gateway answers it in process.
func (w *Watcher) Health(context.Context, *gatewayv1.HealthRequest) (*gatewayv1.HealthResponse, error) {
	st := "healthy"
	if !w.Ready() {
		st = "unhealthy"
	}
	return &gatewayv1.HealthResponse{Status: st, Services: w.Statuses()}, nil
}
