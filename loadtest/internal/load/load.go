// Package load drives HTTP load and measures it: a closed loop (N connections,
// each sending its next request when the previous one answered: the maximum
// throughput) and an open model (a constant arrival rate from vegeta, whatever
// the latency: what users see at a given traffic). Every response goes through
// the scenario's content check; a failed check counts as an error.
package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Scenario is what to send and how to judge each answer.
type Scenario struct {
	// Name labels the scenario in progress lines and reports.
	Name string
	// Targeter yields the next request; it is called concurrently.
	Targeter vegeta.Targeter
	// Kind names the endpoint of a request URL, for per-endpoint figures of a
	// mixed journey.
	Kind func(url string) string
	// Check judges a response (Code, Body, Method, URL are set) and says what
	// was wrong. It is called from one goroutine per connection in the closed
	// loop, so it must be safe for concurrent use.
	Check func(r *vegeta.Result) error
}

// Stats are the figures of one measurement (one offered rate, or one closed loop).
type Stats struct {
	Offered     float64            `json:"offered_rps,omitempty"` // 0 for a closed loop
	Connections int                `json:"connections,omitempty"` // closed loop only
	Seconds     float64            `json:"seconds"`               // first send to last answer
	Sent        int                `json:"sent"`
	OK          int                `json:"ok"`
	Errors      int                `json:"errors"`
	Achieved    float64            `json:"achieved_rps"` // OK answers per second
	ErrorRatio  float64            `json:"error_ratio"`
	Latency     Latency            `json:"latency_ms"`
	Reasons     map[string]int     `json:"error_reasons,omitempty"`
	PerKind     map[string]*Stats  `json:"per_kind,omitempty"`
	Extra       map[string]float64 `json:"extra,omitempty"`
	StoppedWhy  string             `json:"stopped_why,omitempty"`
	Started     time.Time          `json:"started"`
	Ended       time.Time          `json:"ended"`
}

// Latency percentiles in milliseconds, exact (from every sample).
type Latency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// collector accumulates results; not safe for concurrent use.
type collector struct {
	lat     []time.Duration
	sent    int
	ok      int
	errs    int
	reasons map[string]int
	kinds   map[string]*collector
	first   time.Time
	last    time.Time
}

func newCollector() *collector {
	return &collector{reasons: map[string]int{}, kinds: map[string]*collector{}}
}

const maxReasonLen = 160

func (c *collector) add(kind string, start time.Time, lat time.Duration, err error) {
	c.addOne(start, lat, err)
	if kind == "" {
		return
	}
	k := c.kinds[kind]
	if k == nil {
		k = newCollector()
		c.kinds[kind] = k
	}
	k.addOne(start, lat, err)
}

func (c *collector) addOne(start time.Time, lat time.Duration, err error) {
	c.sent++
	if c.first.IsZero() || start.Before(c.first) {
		c.first = start
	}
	if end := start.Add(lat); end.After(c.last) {
		c.last = end
	}
	c.lat = append(c.lat, lat)
	if err != nil {
		c.errs++
		msg := err.Error()
		if len(msg) > maxReasonLen {
			msg = msg[:maxReasonLen] + "…"
		}
		c.reasons[msg]++
		return
	}
	c.ok++
}

func (c *collector) merge(o *collector) {
	c.lat = append(c.lat, o.lat...)
	c.sent += o.sent
	c.ok += o.ok
	c.errs += o.errs
	for k, v := range o.reasons {
		c.reasons[k] += v
	}
	if !o.first.IsZero() && (c.first.IsZero() || o.first.Before(c.first)) {
		c.first = o.first
	}
	if o.last.After(c.last) {
		c.last = o.last
	}
	for k, v := range o.kinds {
		if c.kinds[k] == nil {
			c.kinds[k] = newCollector()
		}
		c.kinds[k].merge(v)
	}
}

func (c *collector) stats(window time.Duration) *Stats {
	s := &Stats{Sent: c.sent, OK: c.ok, Errors: c.errs, Started: c.first, Ended: c.last}
	if len(c.reasons) > 0 {
		s.Reasons = c.reasons
	}
	secs := window.Seconds()
	if secs <= 0 {
		secs = c.last.Sub(c.first).Seconds()
	}
	s.Seconds = secs
	if secs > 0 {
		s.Achieved = float64(c.ok) / secs
	}
	if c.sent > 0 {
		s.ErrorRatio = float64(c.errs) / float64(c.sent)
	}
	s.Latency = percentiles(c.lat)
	if len(c.kinds) > 0 {
		s.PerKind = map[string]*Stats{}
		for k, v := range c.kinds {
			s.PerKind[k] = v.stats(window)
		}
	}
	return s
}

func percentiles(lat []time.Duration) Latency {
	if len(lat) == 0 {
		return Latency{}
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		i := int(q*float64(len(lat))+0.5) - 1 // nearest rank
		i = max(0, min(i, len(lat)-1))
		return ms(lat[i])
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return Latency{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ms(lat[len(lat)-1]), Mean: ms(sum / time.Duration(len(lat)))}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Progress is the live counters of the measurement in progress.
type Progress struct {
	Label  atomic.Value // string
	Sent   atomic.Int64
	OK     atomic.Int64
	Failed atomic.Int64
	Start  atomic.Int64 // unix nanos
}

func (p *Progress) Reset(label string) {
	if p == nil {
		return
	}
	p.Label.Store(label)
	p.Sent.Store(0)
	p.OK.Store(0)
	p.Failed.Store(0)
	p.Start.Store(time.Now().UnixNano())
}

func (p *Progress) count(err error) {
	if p == nil {
		return
	}
	p.Sent.Add(1)
	if err != nil {
		p.Failed.Add(1)
	} else {
		p.OK.Add(1)
	}
}

// String is a one-line summary: label, elapsed time, counts, rate.
func (p *Progress) String() string {
	label, _ := p.Label.Load().(string)
	el := time.Since(time.Unix(0, p.Start.Load()))
	rate := 0.0
	if el > 0 {
		rate = float64(p.OK.Load()) / el.Seconds()
	}
	return fmt.Sprintf("%-34s %5.1fs  sent %7d  ok %7d  errors %5d  %7.0f ok/s", label, el.Seconds(), p.Sent.Load(), p.OK.Load(), p.Failed.Load(), rate)
}

// dialContext opens the generator's connections, in both models.
var dialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext

// NewClient returns an HTTP/1.1 keep-alive client for load, its pool sized for conns
// idle connections per host (the open model opens more when it needs them).
func NewClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         dialContext,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// judge turns a response into (kind, error) with the scenario's check, after the
// transport-level outcome.
func judge(sc Scenario, r *vegeta.Result) (string, error) {
	kind := sc.Kind(r.URL)
	if r.Error != "" && r.Code == 0 {
		return kind, fmt.Errorf("transport: %s", trimErr(r.Error))
	}
	return kind, sc.Check(r)
}

// trimErr drops the request URL and addresses from Go's error strings so equal
// causes group together.
func trimErr(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "\"") {
		return s[i+2:]
	}
	return s
}

// Closed runs conns connections in a closed loop for warmup+dur and reports the
// figures of dur (the warm-up is measured by nobody).
func Closed(ctx context.Context, client *http.Client, sc Scenario, conns int, warmup, dur time.Duration, prog *Progress) (*Stats, error) {
	prog.Reset(fmt.Sprintf("%s closed %d conns", sc.Name, conns))
	ctx, cancel := context.WithTimeout(ctx, warmup+dur+client.Timeout+time.Second)
	defer cancel()
	measureFrom := time.Now().Add(warmup)
	stopAt := measureFrom.Add(dur)
	cols := make([]*collector, conns)
	var wg sync.WaitGroup
	var targetErr atomic.Value
	for i := range conns {
		cols[i] = newCollector()
		wg.Add(1)
		go func(c *collector) {
			defer wg.Done()
			var tgt vegeta.Target
			for ctx.Err() == nil {
				now := time.Now()
				if now.After(stopAt) {
					return
				}
				tgt = vegeta.Target{}
				if err := sc.Targeter(&tgt); err != nil {
					targetErr.Store(err)
					cancel()
					return
				}
				res := do(ctx, client, &tgt)
				kind, err := judge(sc, res)
				prog.count(err)
				if res.Timestamp.After(measureFrom) {
					c.add(kind, res.Timestamp, res.Latency, err)
				}
			}
		}(cols[i])
	}
	wg.Wait()
	if v := targetErr.Load(); v != nil {
		return nil, fmt.Errorf("targeter: %w", v.(error))
	}
	if err := ctx.Err(); err != nil && time.Now().Before(stopAt) {
		return nil, fmt.Errorf("closed loop: %w", err)
	}
	all := newCollector()
	for _, c := range cols {
		all.merge(c)
	}
	s := all.stats(dur)
	s.Connections = conns
	return s, nil
}

func do(ctx context.Context, client *http.Client, tgt *vegeta.Target) *vegeta.Result {
	res := &vegeta.Result{Method: tgt.Method, URL: tgt.URL, Timestamp: time.Now()}
	req, err := http.NewRequestWithContext(ctx, tgt.Method, tgt.URL, bytes.NewReader(tgt.Body))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	for k, v := range tgt.Header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		res.Latency = time.Since(res.Timestamp)
		res.Error = err.Error()
		return res
	}
	res.Body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	res.Latency = time.Since(res.Timestamp)
	res.Code = uint16(resp.StatusCode)
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// Open offers rate requests per second for dur (open model: a request is sent
// on schedule even when earlier ones have not answered) and reports what came
// back. Each request goes to an idle connection, or to a new one when every
// connection is busy; at most maxInFlight connections, so requests, are
// outstanding (0: no bound), and when a saturated system reaches that bound
// the generator falls behind schedule, which shows as Sent < offered.
// Requests still running at the end are waited for, up to the client's
// timeout. The connections are dialled with client's dialer (an
// *http.Transport's) and closed at the end.
func Open(ctx context.Context, client *http.Client, sc Scenario, rate int, dur time.Duration, maxInFlight int, prog *Progress) (*Stats, error) {
	prog.Reset(fmt.Sprintf("%s %d/s", sc.Name, rate))
	if rate <= 0 {
		return nil, fmt.Errorf("open model: rate %d", rate)
	}
	dial, err := dialer(client)
	if err != nil {
		return nil, err
	}
	var (
		slots  = make(chan struct{}) // unbuffered: a send is taken by an idle connection
		wg     sync.WaitGroup
		mu     sync.Mutex
		all    = newCollector()
		conns  int
		failed atomic.Value // the targeter's error
	)
	stop := make(chan struct{})
	var stopOnce sync.Once
	connection := func() {
		defer wg.Done()
		c := &conn{dial: dial, timeout: client.Timeout}
		defer c.close()
		col := newCollector()
		for range slots {
			var tgt vegeta.Target
			if err := sc.Targeter(&tgt); err != nil {
				failed.Store(err)
				stopOnce.Do(func() { close(stop) })
				break
			}
			res := c.do(&tgt)
			kind, err := judge(sc, res)
			prog.count(err)
			col.add(kind, res.Timestamp, res.Latency, err)
		}
		for range slots { // after a targeter error, let the dispatcher finish
		}
		mu.Lock()
		all.merge(col)
		mu.Unlock()
	}
	began := time.Now()
	total := int(dur.Seconds() * float64(rate))
	var cancelled error
	// A request late on its schedule is sent at once, as long as the window
	// lasts: a generator held up by busy connections sends fewer, not later.
	timer, end := time.NewTimer(time.Hour), time.NewTimer(dur)
	defer timer.Stop()
	defer end.Stop()
dispatch:
	for n := 0; n < total; n++ {
		due := began.Add(time.Duration(float64(n) * float64(time.Second) / float64(rate)))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				cancelled = ctx.Err()
				break dispatch
			case <-stop:
				break dispatch
			}
		}
		select {
		case slots <- struct{}{}:
			continue
		default: // every connection is busy
		}
		if maxInFlight <= 0 || conns < maxInFlight {
			conns++
			wg.Add(1)
			go connection()
		}
		select {
		case slots <- struct{}{}:
		case <-end.C:
			break dispatch
		case <-ctx.Done():
			cancelled = ctx.Err()
			break dispatch
		case <-stop:
			break dispatch
		}
	}
	close(slots)
	wg.Wait()
	if v := failed.Load(); v != nil {
		return nil, fmt.Errorf("targeter: %w", v.(error))
	}
	if cancelled != nil {
		return nil, cancelled
	}
	s := all.stats(0)
	s.Offered = float64(rate)
	// Achieved is over the offered window, not including the drain.
	if dur > 0 {
		s.Achieved = float64(s.OK) / max(dur.Seconds(), s.Seconds)
	}
	return s, nil
}

// dialer returns the function that opens a connection like client would: with
// its Transport's DialContext, or a plain TCP dialer.
func dialer(client *http.Client) (func(addr string) (net.Conn, error), error) {
	d := dialContext
	if client.Transport != nil {
		t, ok := client.Transport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("open model: client's transport is a %T, want *http.Transport", client.Transport)
		}
		if t.DialContext != nil {
			d = t.DialContext
		}
	}
	return func(addr string) (net.Conn, error) { return d(context.Background(), "tcp", addr) }, nil
}

// SortedKinds returns the per-kind keys in a stable order.
func SortedKinds(m map[string]*Stats) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
