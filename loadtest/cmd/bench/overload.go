package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/loadtest/internal/procmon"
	"github.com/carbuild/carbuild/loadtest/internal/report"
)

// overload is the phase of issue #15: the stack's saturation throughput
// (the closed loop's) offered several times over, open model, to see that
// the gateway's overload control keeps good work fast: admitted requests
// keep their latency, excess ones are refused at once (503/429 with
// Retry-After) instead of every call queueing until its deadline.
type overload struct {
	Saturation float64 // req/s of the closed loop
	// SaturationSent and SaturationErrors are the closed loop's requests and
	// failed answers: a loop the guard sheds measured the guard, not the
	// stack's saturation.
	SaturationSent, SaturationErrors int
	Offered                          float64 // req/s offered
	Seconds                          float64
	Started                          time.Time
	Ended                            time.Time
	Sent                             int
	Admitted                         int // 2xx
	Shed                             int // 503 and 429 from the overload guard
	Other                            int // anything else: timeouts, transport errors, other codes
	Goodput                          float64
	// Latencies in ms.
	AdmittedP50, AdmittedP99, AdmittedMax float64
	ShedP50, ShedP99, ShedMax             float64
	Memory                                map[string]procmon.Memory
	// Reasons counts the "other" answers by cause (status or error).
	Reasons map[string]int
	// ServerShed and ServerAdmitted are the same answers timed inside the
	// gateway (503 within 5 ms, 200 within 50 ms), when its metrics could
	// be read.
	ServerShed, ServerAdmitted *serverTimes
	// Cost is where the stack's CPU went in the saturation loop and in the
	// overload; nil when the processes could not be read.
	Cost *overloadCost
	// Per-second timeline, for the plot.
	timeline []overloadSecond
}

// overloadCost is the stack's CPU per admitted request in the closed loop
// that set the saturation and in the overload, per process, in µs. When
// the overload costs more per admitted request than the saturation did,
// the difference is what the refused requests (and the waiting) took.
type overloadCost struct {
	Saturation, Overload map[string]float64 // µs of CPU per admitted request
	// SaturationCPUs and OverloadCPUs are each CPU's busy share in percent.
	SaturationCPUs, OverloadCPUs []float64
}

// perRequest turns a phase's CPU use into µs per admitted request, per
// watched process (the stack's PostgreSQL among them when it runs here).
func perRequest(u procmon.Usage, seconds, admitted float64) map[string]float64 {
	out := map[string]float64{}
	if admitted <= 0 || seconds <= 0 {
		return out
	}
	for name, pct := range u.Process {
		out[name] = pct / 100 * seconds / admitted * 1e6
	}
	return out
}

// saturationConns is how many connections the closed loop that measures
// the saturation may use: conns, or fewer when the gateway admits fewer
// requests at once (carbuild_gateway_admission_limit on its operations
// listener): a loop with more connections than the bound is partly shed, and
// its shed requests, answered at once, come straight back.
func saturationConns(ctx context.Context, client *http.Client, gatewayOps string, conns int) int {
	m, err := scrapeCounters(ctx, client, gatewayOps, "carbuild_gateway_admission_limit")
	if limit, ok := m["carbuild_gateway_admission_limit"]; err == nil && ok && limit >= 1 && int(limit) < conns {
		return int(limit)
	}
	return conns
}

// text lays the costs side by side, the stack's processes first.
func (c *overloadCost) text() string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(c.Saturation)) {
		parts = append(parts, fmt.Sprintf("%s %.0f → %.0f", n, c.Saturation[n], c.Overload[n]))
	}
	return fmt.Sprintf("CPU µs per admitted request, saturation → overload: %s; CPUs busy %s → %s %%",
		strings.Join(parts, ", "), percents(c.SaturationCPUs), percents(c.OverloadCPUs))
}

func costText(c *overloadCost) string {
	if c == nil {
		return ""
	}
	return "; " + c.text()
}

func percents(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, "/")
}

type overloadSecond struct {
	admitted, shed, other int
	admittedLat, shedLat  []time.Duration
}

// runOverload offers factor × the closed loop sat's throughput of sc for dur.
func runOverload(ctx context.Context, client *http.Client, sc load.Scenario, sat *load.Stats, factor float64, dur time.Duration, sampler *procmon.Sampler) (*overload, error) {
	o := &overload{Saturation: sat.Achieved, SaturationSent: sat.Sent, SaturationErrors: sat.Errors,
		Offered: math.Round(sat.Achieved * factor), Reasons: map[string]int{}}
	if o.Offered < 1 {
		return nil, fmt.Errorf("no saturation throughput to multiply (%.0f req/s)", sat.Achieved)
	}
	atk := vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.Workers(256),
		// The generator must never be the bottleneck: a refused request
		// must be sent when its time comes, not when a worker is free.
		vegeta.MaxWorkers(20_000),
		vegeta.MaxBody(1<<20),
		vegeta.KeepAlive(true),
	)
	pacer := vegeta.ConstantPacer{Freq: int(o.Offered), Per: time.Second}
	start := time.Now()
	o.timeline = make([]overloadSecond, int(dur/time.Second)+1)
	var admittedLat, shedLat []time.Duration
	for r := range atk.Attack(sc.Targeter, pacer, dur, "overload") {
		if ctx.Err() != nil {
			atk.Stop()
		}
		o.Sent++
		sec := min(int(r.Timestamp.Sub(start)/time.Second), len(o.timeline)-1)
		ts := &o.timeline[max(sec, 0)]
		switch {
		case r.Code >= 200 && r.Code < 300 && r.Error == "":
			o.Admitted++
			ts.admitted++
			ts.admittedLat = append(ts.admittedLat, r.Latency)
			admittedLat = append(admittedLat, r.Latency)
		case r.Code == http.StatusServiceUnavailable || r.Code == http.StatusTooManyRequests:
			o.Shed++
			ts.shed++
			ts.shedLat = append(ts.shedLat, r.Latency)
			shedLat = append(shedLat, r.Latency)
		default:
			o.Other++
			ts.other++
			why := fmt.Sprintf("status %d", r.Code)
			if r.Error != "" {
				why = r.Error
				if i := strings.LastIndex(why, ": "); i >= 0 {
					why = why[i+2:] // the cause, without the URL and addresses
				}
			}
			o.Reasons[why]++
		}
	}
	end := time.Now()
	o.Started, o.Ended = start, end
	o.Seconds = end.Sub(start).Seconds()
	o.Goodput = float64(o.Admitted) / dur.Seconds()
	o.AdmittedP50, o.AdmittedP99, o.AdmittedMax = percentiles(admittedLat)
	o.ShedP50, o.ShedP99, o.ShedMax = percentiles(shedLat)
	o.Memory = sampler.Peak(start, end)
	return o, ctx.Err()
}

// percentiles returns P50, P99 and the maximum in milliseconds.
func percentiles(d []time.Duration) (p50, p99, mx float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := min(int(math.Ceil(q*float64(len(d))))-1, len(d)-1)
		return float64(d[max(i, 0)]) / float64(time.Millisecond)
	}
	return at(0.50), at(0.99), float64(d[len(d)-1]) / float64(time.Millisecond)
}

// minOfferedShare is the share of the offered rate the generator must send
// for the goodput to be judged.
const minOfferedShare = 0.95

// maxSaturationErrorShare is the share of the saturation loop's answers that
// may fail for its throughput to count as the stack's saturation. An
// adaptive bound (GATEWAY_LATENCY_TARGET) that shrinks below the loop's
// connections sheds the loop; its shed requests come straight back, and its
// "saturation" is whatever the bound let through (a goodput of 297 % of it
// "passed" once).
const maxSaturationErrorShare = 0.01

// targets judges the phase against issue #15.
func (o *overload) targets(factor float64) []report.Target {
	name := fmt.Sprintf("overload: %.0f× saturation (%.0f req/s offered)", factor, o.Offered)
	goodShare, sent := 0.0, 0.0
	if o.Saturation > 0 {
		goodShare = o.Goodput / o.Saturation
	}
	if o.Seconds > 0 {
		sent = float64(o.Sent) / o.Seconds
	}
	// The target is the goodput under the offered load: a generator that
	// could not send it (too little CPU left to it) measured a lighter one.
	offered := o.Offered > 0 && sent >= minOfferedShare*o.Offered
	saturated := float64(o.SaturationErrors) <= maxSaturationErrorShare*float64(o.SaturationSent)
	good := report.Target{Name: name + ", goodput", Want: "≥ 80 % of saturation",
		Got: fmt.Sprintf("%.0f req/s = %.0f %% of %.0f; generator sent %.0f req/s; %d admitted, %d shed, %d other %v",
			o.Goodput, 100*goodShare, o.Saturation, sent, o.Admitted, o.Shed, o.Other, o.Reasons) + costText(o.Cost),
		Pass: goodShare >= 0.80 && offered && saturated}
	if !saturated {
		good.Got = fmt.Sprintf("not judged: %d of the saturation loop's %d answers failed (over %.0f %%: the loop was shed, so its throughput is not the stack's); ",
			o.SaturationErrors, o.SaturationSent, 100*maxSaturationErrorShare) + good.Got
	}
	if !offered {
		good.Got = fmt.Sprintf("not judged: the generator sent %.0f of the %.0f req/s offered (under %.0f %%); ", sent, o.Offered, 100*minOfferedShare) + good.Got
	}
	ts := []report.Target{
		good,
		{Name: name + ", admitted P99", Want: "≤ 50 ms",
			Got:  fmt.Sprintf("P50 %.1f ms, P99 %.1f ms, max %.1f ms%s", o.AdmittedP50, o.AdmittedP99, o.AdmittedMax, o.ServerAdmitted.text("200", "50 ms")),
			Pass: o.Admitted > 0 && o.AdmittedP99 <= 50},
		{Name: name + ", shed answered", Want: "every one ≤ 5 ms",
			Got:  fmt.Sprintf("P50 %.2f ms, P99 %.2f ms, max %.2f ms over %d%s", o.ShedP50, o.ShedP99, o.ShedMax, o.Shed, o.ServerShed.text("503", "5 ms")),
			Pass: o.Shed > 0 && o.ShedMax <= 5}, // none shed: the guard was never reached, nothing shown
	}
	mem := "gateway peak RSS "
	m, ok := o.Memory["gateway"]
	if ok {
		mem += fmt.Sprintf("%.0f MiB", float64(m.RSS)/(1<<20))
	} else {
		mem += "not sampled"
	}
	ts = append(ts, report.Target{Name: name + ", memory", Want: "bounded (≤ 256 MiB, the pod limit)", Got: mem,
		Pass: ok && m.RSS > 0 && m.RSS <= 256<<20})
	return ts
}

func (t *serverTimes) text(code, bound string) string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf("; inside the gateway %d of %d answers %s within %s", t.Within, t.Count, code, bound)
}

// plot draws the per-second timeline beside the report's other plots.
func (o *overload) plot(dir string) (string, error) {
	var x, admitted, shed, other, p99a, p99s []float64
	for i, s := range o.timeline {
		if s.admitted+s.shed+s.other == 0 {
			continue
		}
		x = append(x, float64(i))
		admitted = append(admitted, float64(s.admitted))
		shed = append(shed, float64(s.shed))
		other = append(other, float64(s.other))
		_, a, _ := percentiles(s.admittedLat)
		_, b, _ := percentiles(s.shedLat)
		p99a, p99s = append(p99a, a), append(p99s, b)
	}
	rate := report.Chart{
		Title:  fmt.Sprintf("Overload: %.0f req/s offered (%.1f× saturation %.0f req/s)", o.Offered, o.Offered/o.Saturation, o.Saturation),
		XLabel: "second", YLabel: "answers per second",
		Lines: []report.Line{
			{Name: "admitted (2xx)", X: x, Y: admitted},
			{Name: "shed (503/429)", X: x, Y: shed},
			{Name: "other (errors, timeouts)", X: x, Y: other},
		},
		HLines: map[string]float64{"saturation": o.Saturation, "80 % of saturation": 0.8 * o.Saturation},
	}
	f1 := filepath.Join(dir, "overload-rate.png")
	if err := rate.Save(f1); err != nil {
		return "", err
	}
	lat := report.Chart{
		Title:  "Overload: P99 latency per second",
		XLabel: "second", YLabel: "ms", LogY: true,
		Lines: []report.Line{
			{Name: "admitted P99", X: x, Y: p99a},
			{Name: "shed P99", X: x, Y: p99s},
		},
		HLines: map[string]float64{"50 ms (admitted)": 50, "5 ms (shed)": 5},
	}
	f2 := filepath.Join(dir, "overload-latency.png")
	return f1 + ", " + f2, lat.Save(f2)
}
