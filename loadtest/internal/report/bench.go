package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/loadtest/internal/procmon"
	"github.com/carbuild/carbuild/loadtest/internal/scenario"
)

// Bench is everything one `make bench` run measured.
type Bench struct {
	RunID    string            `json:"run_id"`
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Command  string            `json:"command"`
	Machine  map[string]string `json:"machine"`
	Target   string            `json:"target"`
	Config   map[string]string `json:"config"`

	Closed struct {
		Reference    *load.Stats   `json:"reference"`
		Stack        *load.Stats   `json:"stack"`
		Ratio        float64       `json:"ratio"`
		ReferenceCPU procmon.Usage `json:"reference_cpu"`
		StackCPU     procmon.Usage `json:"stack_cpu"`
	} `json:"closed_loop"`
	// ClosedLoops are further closed loops of a scenario other than the
	// default run's (e.g. -scenario bigcat: one per route).
	ClosedLoops []*ClosedLoop             `json:"closed_loops,omitempty"`
	Series      []*Series                 `json:"series"`
	Memory      map[string]procmon.Memory `json:"memory_peak_whole_run"`
	PIDs        map[string]int            `json:"pids"`
	Orders      *scenario.Verification    `json:"orders,omitempty"`
	Targets     []Target                  `json:"targets"`
	Profiles    []Profile                 `json:"profiles,omitempty"`
	Notes       []string                  `json:"notes,omitempty"`
	// Sections are a phase's own Markdown, each under its title.
	Sections []Section `json:"sections,omitempty"`
}

// Section is a titled piece of a report's Markdown.
type Section struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// ClosedLoop is one route measured in a closed loop on the reference and on
// the stack, in the same run.
type ClosedLoop struct {
	What         string        `json:"what"`
	Reference    *load.Stats   `json:"reference"`
	Stack        *load.Stats   `json:"stack"`
	Ratio        float64       `json:"ratio"`
	ReferenceCPU procmon.Usage `json:"reference_cpu"`
	StackCPU     procmon.Usage `json:"stack_cpu"`
}

// Series is one open-model staircase: the same scenario at rising offered rates.
type Series struct {
	Name       string        `json:"name"`
	What       string        `json:"what"`
	Steps      []*load.Stats `json:"steps"`
	StoppedWhy string        `json:"stopped_why"`
	// Memory per step (same index as Steps): peak VmRSS per process.
	Memory []map[string]procmon.Memory `json:"memory_per_step,omitempty"`
	// CPU per step (same index as Steps).
	CPU []procmon.Usage `json:"cpu_per_step,omitempty"`
}

// Step returns the step offered at rate, or nil.
func (s *Series) Step(rate float64) (*load.Stats, int) {
	for i, st := range s.Steps {
		if st.Offered == rate {
			return st, i
		}
	}
	return nil, -1
}

// Target is one objective of the issue and whether this run met it.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

// Profile is a pprof profile captured during the run, with its top functions.
type Profile struct {
	Service string `json:"service"`
	Phase   string `json:"phase"`
	Kind    string `json:"kind"` // cpu or heap
	File    string `json:"file"`
	Top     string `json:"top,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Write writes report.json, report.md and the plots into dir.
func (b *Bench) Write(dir string) error {
	j, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), j, 0o644); err != nil {
		return err
	}
	plots, err := b.plots(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(b.markdown(plots)), 0o644)
}

func (b *Bench) plots(dir string) ([]string, error) {
	var files []string
	var p99 []Line
	for _, s := range b.Series {
		if len(s.Steps) == 0 {
			continue
		}
		var off, ach, p50, p95, p99s []float64
		for _, st := range s.Steps {
			off = append(off, st.Offered)
			ach = append(ach, st.Achieved)
			p50 = append(p50, st.Latency.P50)
			p95 = append(p95, st.Latency.P95)
			p99s = append(p99s, st.Latency.P99)
		}
		p99 = append(p99, Line{Name: s.Name, X: off, Y: p99s})
		tp := Chart{
			Title: fmt.Sprintf("%s: achieved vs offered throughput", s.Name), XLabel: "offered (req/s)", YLabel: "achieved (ok req/s)",
			Lines: []Line{{Name: "achieved", X: off, Y: ach}}, Identity: true,
		}
		lat := Chart{
			Title: fmt.Sprintf("%s: latency vs offered rate", s.Name), XLabel: "offered (req/s)", YLabel: "latency (ms, log)",
			Lines: []Line{{Name: "P50", X: off, Y: p50}, {Name: "P95", X: off, Y: p95}, {Name: "P99", X: off, Y: p99s}}, LogY: true,
			HLines: map[string]float64{"10 ms": 10},
		}
		// per-endpoint P99 of a mixed journey
		kinds := map[string]bool{}
		for _, st := range s.Steps {
			for k := range st.PerKind {
				kinds[k] = true
			}
		}
		if len(kinds) > 1 {
			for _, k := range sortedKeys(kinds) {
				var ys []float64
				for _, st := range s.Steps {
					if ks := st.PerKind[k]; ks != nil {
						ys = append(ys, ks.Latency.P99)
					} else {
						ys = append(ys, 0)
					}
				}
				lat.Lines = append(lat.Lines, Line{Name: "P99 " + k, X: off, Y: ys})
			}
		}
		for _, c := range []struct {
			chart Chart
			file  string
		}{{tp, s.Name + "-throughput.png"}, {lat, s.Name + "-latency.png"}} {
			if err := c.chart.Save(filepath.Join(dir, c.file)); err != nil {
				return nil, err
			}
			files = append(files, c.file)
		}
	}
	if len(p99) > 1 {
		c := Chart{Title: "P99 latency vs offered rate, all series", XLabel: "offered (req/s)", YLabel: "P99 (ms, log)", Lines: p99, LogY: true,
			HLines: map[string]float64{"10 ms": 10}}
		if err := c.Save(filepath.Join(dir, "p99-all.png")); err != nil {
			return nil, err
		}
		files = append(files, "p99-all.png")
	}
	return files, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// cpuPerRequest lists each process's CPU (percent of one core) and its CPU
// time per answered request, a cost that compares across load levels.
func cpuPerRequest(u procmon.Usage, rps float64) string {
	var parts []string
	for _, n := range sortedKeys(u.Process) {
		c := u.Process[n]
		if rps > 0 && c >= 0.5 {
			parts = append(parts, fmt.Sprintf("%s %.0f (%.0f µs/req)", n, c, c/100/rps*1e6))
		} else {
			parts = append(parts, fmt.Sprintf("%s %.0f", n, c))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

// contended describes how much CPU other processes took during the
// measurements, or "" when they took less than half a CPU on average.
func (b *Bench) contended() string {
	var sum float64
	n := 0
	add := func(u procmon.Usage) {
		if u.Machine > 0 {
			sum += u.Others
			n++
		}
	}
	add(b.Closed.ReferenceCPU)
	add(b.Closed.StackCPU)
	for _, c := range b.ClosedLoops {
		add(c.ReferenceCPU)
		add(c.StackCPU)
	}
	for _, s := range b.Series {
		for _, u := range s.CPU {
			add(u)
		}
	}
	if n == 0 || sum/float64(n) < 50 {
		return ""
	}
	return fmt.Sprintf("on average %.0f %% of one CPU went to other processes", sum/float64(n))
}

// MiB formats bytes as MiB.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (b *Bench) markdown(plots []string) string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format+"\n", a...) }
	p("# Car Build benchmark %s", b.RunID)
	p("")
	p("- Command: `%s`", b.Command)
	p("- Started %s, took %s", b.Started.UTC().Format(time.RFC3339), b.Finished.Sub(b.Started).Round(time.Second))
	p("- Target: %s", b.Target)
	for _, k := range sortedKeys(b.Machine) {
		p("- %s: %s", k, b.Machine[k])
	}
	p("")
	if busy := b.contended(); busy != "" {
		p("> **Warning: other work used the CPU during the measurements** (%s). The load generator,", busy)
		p("> the reference and the stack were starved, so latencies are inflated and the stack/reference")
		p("> ratio is distorted (the in-process reference competes as one process, the stack as three).")
		p("> Repeat on a quiet machine for figures that compare.")
		p("")
	}
	p("## Targets")
	p("")
	p("| target | want | got | result |")
	p("|---|---|---|---|")
	for _, t := range b.Targets {
		res := "**PASS**"
		if !t.Pass {
			res = "**FAIL**"
		}
		p("| %s | %s | %s | %s |", t.Name, t.Want, t.Got, res)
	}
	p("")
	loops := b.ClosedLoops
	if b.Closed.Reference != nil || b.Closed.Stack != nil {
		loops = append([]*ClosedLoop{{What: "POST /get-pecas (Civic)", Reference: b.Closed.Reference, Stack: b.Closed.Stack, Ratio: b.Closed.Ratio,
			ReferenceCPU: b.Closed.ReferenceCPU, StackCPU: b.Closed.StackCPU}}, loops...)
	}
	for _, c := range loops {
		p("## Closed loop: %s", c.What)
		p("")
		p("| server | connections | ok req/s | errors | P50 ms | P95 ms | P99 ms | max ms | CPU %% of one core (CPU per request) | machine busy (others, %% of one core) |")
		p("|---|---|---|---|---|---|---|---|---|---|")
		for _, r := range []struct {
			name string
			s    *load.Stats
			cpu  procmon.Usage
		}{{"bare reference (in-process net/http)", c.Reference, c.ReferenceCPU}, {"stack (gateway → catalog)", c.Stack, c.StackCPU}} {
			if r.s == nil {
				continue
			}
			p("| %s | %d | %.0f | %d | %.2f | %.2f | %.2f | %.2f | %s | %.0f %% (others %.0f) |", r.name, r.s.Connections, r.s.Achieved, r.s.Errors, r.s.Latency.P50, r.s.Latency.P95, r.s.Latency.P99, r.s.Latency.Max, cpuPerRequest(r.cpu, r.s.Achieved), r.cpu.Machine, r.cpu.Others)
			for reason, n := range r.s.Reasons {
				p("")
				p("- %d × `%s`", n, reason)
			}
		}
		if c.Ratio > 0 {
			p("")
			p("Stack / reference throughput: **%.1f %%**.", 100*c.Ratio)
		}
		p("")
	}
	for _, s := range b.Series {
		p("")
		p("## Open model: %s", s.Name)
		p("")
		p("%s Stopped: %s.", s.What, s.StoppedWhy)
		p("")
		names := sortedKeys(b.PIDs)
		hdr := "| offered req/s | achieved ok/s | sent | errors | P50 ms | P95 ms | P99 ms | max ms |"
		sep := "|---|---|---|---|---|---|---|---|"
		for _, n := range names {
			hdr += " RSS " + n + " |"
			sep += "---|"
		}
		hdr += " CPU % of one core (CPU per request) | machine busy (others, % of one core) |"
		sep += "---|---|"
		p("%s", hdr)
		p("%s", sep)
		for i, st := range s.Steps {
			row := fmt.Sprintf("| %.0f | %.0f | %d | %d | %.2f | %.2f | %.2f | %.2f |", st.Offered, st.Achieved, st.Sent, st.Errors, st.Latency.P50, st.Latency.P95, st.Latency.P99, st.Latency.Max)
			for _, n := range names {
				v := "–"
				if i < len(s.Memory) {
					if m, ok := s.Memory[i][n]; ok {
						v = MiB(m.RSS)
					}
				}
				row += " " + v + " |"
			}
			if i < len(s.CPU) {
				row += fmt.Sprintf(" %s | %.0f %% (others %.0f) |", cpuPerRequest(s.CPU[i], st.Achieved), s.CPU[i].Machine, s.CPU[i].Others)
			} else {
				row += " – | – |"
			}
			p("%s", row)
		}
		perKind := false
		for _, st := range s.Steps {
			perKind = perKind || len(st.PerKind) > 1
		}
		if perKind {
			p("")
			p("Per endpoint (P50 / P99 ms, errors):")
			p("")
			p("| offered req/s | endpoint | ok/s | P50 | P99 | errors |")
			p("|---|---|---|---|---|---|")
			for _, st := range s.Steps {
				for _, k := range load.SortedKinds(st.PerKind) {
					ks := st.PerKind[k]
					p("| %.0f | %s | %.0f | %.2f | %.2f | %d |", st.Offered, k, ks.Achieved, ks.Latency.P50, ks.Latency.P99, ks.Errors)
				}
			}
		}
		errs := map[string]int{}
		for _, st := range s.Steps {
			for r, n := range st.Reasons {
				errs[r] += n
			}
		}
		if len(errs) > 0 {
			p("")
			p("Errors (all steps):")
			p("")
			for _, r := range sortedKeys(errs) {
				p("- %d × `%s`", errs[r], r)
			}
		}
	}
	for _, sec := range b.Sections {
		p("")
		p("## %s", sec.Title)
		p("")
		p("%s", strings.TrimRight(sec.Body, "\n"))
	}
	if b.Orders != nil {
		o := b.Orders
		p("")
		p("## Orders placed by the mixed journey")
		p("")
		p("- confirmed (2xx): %d", o.Confirmed)
		p("- looked up through GET /v1/orders/{id}: %d checked, %d found with the same total", o.Checked, o.Found)
		if o.DBCount >= 0 {
			p("- rows in orders.orders with this run's idempotency keys: %d", o.DBCount)
		} else {
			p("- database count: %s", o.DBNote)
		}
		if len(o.Missing) > 0 {
			p("- missing (first %d): %s", len(o.Missing), strings.Join(o.Missing, ", "))
		}
	}
	p("")
	p("## Memory (whole run)")
	p("")
	p("| process | pid | peak VmRSS sampled | VmHWM |")
	p("|---|---|---|---|")
	for _, n := range sortedKeys(b.PIDs) {
		m := b.Memory[n]
		p("| %s | %d | %s | %s |", n, b.PIDs[n], MiB(m.RSS), MiB(m.HWM))
	}
	if len(b.Profiles) > 0 {
		p("")
		p("## Profiles")
		p("")
		p("Open one with `go tool pprof -http=127.0.0.1:8081 <file>` (or `-top`).")
		for _, pr := range b.Profiles {
			p("")
			if pr.Error != "" {
				p("- %s %s (%s): **not captured**: %s", pr.Service, pr.Kind, pr.Phase, pr.Error)
				continue
			}
			p("### %s %s during %s (`%s`)", pr.Service, pr.Kind, pr.Phase, pr.File)
			if pr.Top != "" {
				p("")
				p("```")
				p("%s", strings.TrimRight(pr.Top, "\n"))
				p("```")
			}
		}
	}
	if len(plots) > 0 {
		p("")
		p("## Plots")
		for _, f := range plots {
			p("")
			p("![%s](%s)", strings.TrimSuffix(f, ".png"), f)
		}
	}
	if len(b.Notes) > 0 {
		p("")
		p("## Notes")
		p("")
		for _, n := range b.Notes {
			p("- %s", n)
		}
	}
	p("")
	p("## Configuration")
	p("")
	for _, k := range sortedKeys(b.Config) {
		p("- %s = %s", k, b.Config[k])
	}
	return w.String()
}
