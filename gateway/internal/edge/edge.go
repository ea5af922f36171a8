// Package edge is the gateway's overload control: what it does before a
// request costs a backend anything. Two guards, both answering at once
// (never queueing a request until its deadline):
//
//   - a token bucket per client (golang.org/x/time/rate): a client that
//     sends faster than its rate gets 429 with Retry-After, so one client
//     cannot take the capacity of all the others. The client is the
//     subject of a verified bearer token, else the peer's address: the
//     guard runs after authentication, so two customers behind one NAT
//     keep their own buckets and one customer on two networks has one.
//     A token that fails verification is charged to its address in a
//     second set of buckets, checked before the next token from that
//     address is verified at all (MayVerify, VerifyFailed): a flood of
//     forged tokens costs one verification per token the rate allows,
//     then 429s that cost a map lookup;
//   - a bound on the requests in flight, with room kept for checkout: when
//     the stack is saturated, more concurrent work only makes every call
//     wait longer (for a backend stream, then a database connection) until
//     all of them time out. Requests past the bound get 503 with Retry-After
//     in microseconds, and the admitted ones keep their latency. Browsing may
//     use only part of the bound, so placing an order (the work that earns
//     money) is still admitted when browsing alone would fill it.
//
// Health endpoints are never limited: probes must see the real state.
package edge

import (
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/carbuild/carbuild/shared/auth"
)

// Options configure the guards. A zero rate or bound turns that guard off.
type Options struct {
	// Rate is each client's sustained requests per second; Burst how many it
	// may send at once above that.
	Rate  float64
	Burst int
	// MaxClients bounds the memory of the per-client buckets: beyond it,
	// the buckets idle longest are dropped (a dropped client starts again
	// with a full bucket, which only errs in its favour).
	MaxClients int
	// MaxInFlight bounds the requests being served at once.
	MaxInFlight int
	// LatencyTarget, when set, makes MaxInFlight the ceiling of an
	// adaptive limit (between MinInFlight and MaxInFlight) that shrinks
	// while more than a tenth of the admitted requests take longer than
	// this, and grows back while they do not.
	LatencyTarget time.Duration
	MinInFlight   int
	// BrowseShare is the part of MaxInFlight that browsing (anything but
	// checkout) may use, in (0, 1]; the rest is kept for checkout.
	BrowseShare float64
	// Subject names the verified client of a request ("" if none): such
	// clients are limited by subject, others by address. Nil: the subject
	// authentication put in the request's context (auth.FromContext).
	Subject func(*http.Request) string
}

// Class is what a request is for.
type Class int

// The classes, in the order they are favoured.
const (
	Checkout Class = iota
	Browse
)

func (c Class) String() string {
	if c == Checkout {
		return "checkout"
	}
	return "browse"
}

// Classify tells checkout (quotes, orders, the seed-compatible /calcular and
// /pagar) from browsing.
func Classify(r *http.Request) Class {
	p := r.URL.Path
	switch {
	case p == "/pagar", p == "/calcular", p == "/v1/quotes", p == "/v1/orders", strings.HasPrefix(p, "/v1/orders/"):
		return Checkout
	}
	return Browse
}

// exempt are the paths never limited: probes and load balancers must see
// the real state of the process, also under overload.
func exempt(p string) bool { return p == "/healthz" || p == "/readyz" }

// Guard applies the options to a handler.
type Guard struct {
	o             Options
	browseMax     int64
	inFlight      atomic.Int64
	clients       *clients
	failed        *clients // by address: tokens that failed verification
	shed          *prometheus.CounterVec
	inFlightGauge prometheus.GaugeFunc
	adaptive      *adaptive // nil: the bound is MaxInFlight
}

// New builds the guard and registers its metrics on reg.
func New(reg prometheus.Registerer, o Options) *Guard {
	g := &Guard{o: o}
	if o.BrowseShare <= 0 || o.BrowseShare > 1 {
		g.o.BrowseShare = 1
	}
	g.browseMax = int64(math.Ceil(float64(o.MaxInFlight) * g.o.BrowseShare))
	if o.Rate > 0 {
		g.clients = newClients(rate.Limit(o.Rate), max(o.Burst, 1), max(o.MaxClients, 1))
		g.failed = newClients(rate.Limit(o.Rate), max(o.Burst, 1), max(o.MaxClients, 1))
	}
	if o.LatencyTarget > 0 && o.MaxInFlight > 0 {
		g.adaptive = newAdaptive(o.LatencyTarget, int64(max(o.MinInFlight, 1)), int64(o.MaxInFlight))
	}
	if g.o.Subject == nil {
		g.o.Subject = verifiedSubject
	}
	g.shed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "carbuild_gateway_shed_total",
		Help: "Requests refused before reaching a backend, by reason (rate_limited: 429, overloaded: 503) and class (checkout, browse).",
	}, []string{"reason", "class"})
	for _, reason := range []string{"rate_limited", "overloaded"} {
		for _, c := range []Class{Checkout, Browse} {
			g.shed.WithLabelValues(reason, c.String())
		}
	}
	g.inFlightGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "carbuild_gateway_admitted_in_flight",
		Help: "Requests admitted by the overload guard and not yet answered (bounded by GATEWAY_MAX_IN_FLIGHT).",
	}, func() float64 { return float64(g.inFlight.Load()) })
	reg.MustRegister(g.shed, g.inFlightGauge)
	if o.MaxInFlight > 0 {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "carbuild_gateway_admission_limit",
			Help: "The overload guard's bound on admitted requests now: GATEWAY_MAX_IN_FLIGHT, or the adaptive limit below it when GATEWAY_LATENCY_TARGET is set (browsing may use GATEWAY_BROWSE_PERCENT of it).",
		}, func() float64 { return float64(g.limit()) }))
	}
	return g
}

// limit is the bound on admitted checkout requests now.
func (g *Guard) limit() int64 {
	if g.adaptive != nil {
		return g.adaptive.current()
	}
	return int64(g.o.MaxInFlight)
}

// Wrap returns next behind the guards. It goes inside authentication,
// which puts the verified subject in the request's context.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if exempt(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		class := Classify(r)
		if g.clients != nil {
			if wait, ok := g.clients.allow(g.clientKey(r), time.Now()); !ok {
				g.shed.WithLabelValues("rate_limited", class.String()).Inc()
				refuse(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "too many requests from this client; retry after the time in Retry-After", wait)
				return
			}
		}
		if g.o.MaxInFlight > 0 {
			limit, browse := g.limit(), g.browseMax
			if g.adaptive != nil {
				browse = int64(math.Ceil(float64(limit) * g.o.BrowseShare))
			}
			if class == Browse {
				limit = browse
			}
			n := g.inFlight.Add(1)
			if n > limit {
				g.inFlight.Add(-1)
				g.shed.WithLabelValues("overloaded", class.String()).Inc()
				refuse(w, http.StatusServiceUnavailable, "UNAVAILABLE", "the service is at capacity; retry after the time in Retry-After", time.Second)
				return
			}
			defer g.inFlight.Add(-1)
			if g.adaptive != nil {
				start := time.Now()
				defer func() { g.adaptive.done(time.Since(start), n) }()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// MayVerify reports whether a bearer token from r's address may be
// verified now; when its address has spent its budget of failed
// verifications (the client rate and burst), it says how long until it may.
// A nil guard, or one without a rate, allows everything.
func (g *Guard) MayVerify(r *http.Request) (time.Duration, bool) {
	if g == nil || g.failed == nil {
		return 0, true
	}
	wait, ok := g.failed.peek(addrKey(r), time.Now())
	if !ok {
		g.shed.WithLabelValues("rate_limited", Classify(r).String()).Inc()
	}
	return wait, ok
}

// VerifyFailed charges a token that failed verification to r's address.
func (g *Guard) VerifyFailed(r *http.Request) {
	if g == nil || g.failed == nil {
		return
	}
	g.failed.allow(addrKey(r), time.Now())
}

// clientKey is the verified subject, else the peer's IP address.
func (g *Guard) clientKey(r *http.Request) string {
	if s := g.o.Subject(r); s != "" {
		return "sub:" + s
	}
	return addrKey(r)
}

func verifiedSubject(r *http.Request) string {
	id, _ := auth.FromContext(r.Context())
	return id.Subject
}

// addrKey is the peer's IP address: the TCP peer's, never X-Forwarded-For,
// which any client can write (behind a trusted proxy, the proxy's limit
// applies to all).
func addrKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// refuse answers in the API's error shape, with Retry-After in whole
// seconds (at least 1, as the header has no finer unit).
func refuse(w http.ResponseWriter, code int, status, msg string, wait time.Duration) {
	secs := max(int64(math.Ceil(wait.Seconds())), 1)
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(`{"code":` + strconv.Itoa(code) + `,"status":"` + status + `","message":"` + msg + `"}` + "\n"))
}

// clients holds one token bucket per client key, at most max of them.
type clients struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	max   int
	m     map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newClients(limit rate.Limit, burst, max int) *clients {
	return &clients{limit: limit, burst: burst, max: max, m: map[string]*bucket{}}
}

// allow takes a token from key's bucket; when there is none it reports how
// long until there will be.
func (c *clients) allow(key string, now time.Time) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.m[key]
	if b == nil {
		if len(c.m) >= c.max {
			c.evictLocked(now)
		}
		b = &bucket{lim: rate.NewLimiter(c.limit, c.burst)}
		c.m[key] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// peek reports whether key's bucket holds a token, without taking it, and
// otherwise how long until it will. A key without a bucket has a full one.
func (c *clients) peek(key string, now time.Time) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.m[key]
	if b == nil {
		return 0, true
	}
	if t := b.lim.TokensAt(now); t < 1 {
		return time.Duration(math.Ceil((1 - t) / float64(c.limit) * float64(time.Second))), false
	}
	return 0, true
}

// evictLocked drops the buckets that are full again (idle long enough to
// have refilled: dropping them changes nothing), or, if none is, the half
// seen longest ago.
func (c *clients) evictLocked(now time.Time) {
	refill := time.Duration(float64(c.burst) / float64(c.limit) * float64(time.Second))
	for k, b := range c.m {
		if now.Sub(b.seen) >= refill {
			delete(c.m, k)
		}
	}
	if len(c.m) < c.max {
		return
	}
	times := make([]time.Time, 0, len(c.m))
	for _, b := range c.m {
		times = append(times, b.seen)
	}
	cut := median(times)
	for k, b := range c.m {
		if !b.seen.After(cut) {
			delete(c.m, k)
		}
	}
}

func median(ts []time.Time) time.Time {
	// Quickselect would do; eviction is rare (only past MaxClients) and
	// the slice is bounded by it, so a sort is fine.
	slices.SortFunc(ts, time.Time.Compare)
	return ts[len(ts)/2]
}
