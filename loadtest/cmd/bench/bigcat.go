package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/loadtest/internal/bigcat"
	"github.com/carbuild/carbuild/loadtest/internal/gencatalog"
	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/loadtest/internal/procmon"
	"github.com/carbuild/carbuild/loadtest/internal/report"
)

// bigcatConfig is what -scenario bigcat (issue 17, target 1) adds to the
// bench's flags.
type bigcatConfig struct {
	models, parts int
	rates         []int
	rss           int64 // bytes: the bound on every service's RSS
}

// Targets of issue 17, target 1.
const (
	bigcatRate     = 2000 // req/s offered at a constant rate
	bigcatP99      = 10   // ms at that rate
	bigcatRatio    = 0.25 // closed loop, stack / reference
	bigcatRSSLimit = 128 << 20
)

func bigcatFlags(fs *flag.FlagSet, c *config) {
	c.bigcat.rss = bigcatRSSLimit
	fs.IntVar(&c.bigcat.models, "bigcat-models", 10_000, "-scenario bigcat: generated car models")
	fs.IntVar(&c.bigcat.parts, "bigcat-parts", 100, "-scenario bigcat: parts per generated model")
	fs.Func("bigcat-rates", "-scenario bigcat: offered rates (req/s) of the open-model steps of each route, rising (default 1000,2000,3000)", func(v string) error {
		c.bigcat.rates = nil
		for _, r := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(r))
			if err != nil || n <= 0 {
				return fmt.Errorf("%q is not a positive integer", r)
			}
			c.bigcat.rates = append(c.bigcat.rates, n)
		}
		if !slices.IsSorted(c.bigcat.rates) {
			return fmt.Errorf("rates must rise")
		}
		return nil
	})
}

// runBigcat is `bench -scenario bigcat` (make bench-bigcat): a generated
// catalog of -bigcat-models × -bigcat-parts parts loaded into the private
// stack's database, the same data held in memory by a bare reference, and
// uniformly random reads over cars, model years and pages of GET
// /v1/cars/{id}/parts and POST /get-pecas: a closed loop of each on the
// reference and on the stack, then constant arrival rates of each; RSS of
// every service throughout; EXPLAIN (ANALYZE, BUFFERS) of the catalog's
// queries at the end of the report.
func runBigcat(ctx context.Context, log *slog.Logger, cfg *config, args []string) (int, error) {
	if cfg.target != "" {
		return 0, fmt.Errorf("-scenario bigcat loads a million parts into the stack's database: it starts its own stack (no -target)")
	}
	if len(cfg.bigcat.rates) == 0 {
		cfg.bigcat.rates = []int{1000, bigcatRate, 3000}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.maxDuration)
	defer cancel()
	started := time.Now()
	b := &report.Bench{
		RunID:   started.UTC().Format("20060102T150405Z"),
		Started: started,
		Command: "bench " + strings.Join(args, " "),
		Machine: machine(),
		Config:  map[string]string{},
	}
	b.Config["scenario"] = "bigcat (issue 17, target 1: big catalog, cold reads)"
	b.Config["conns"] = strconv.Itoa(cfg.conns)
	b.Config["closed_loop"] = fmt.Sprintf("%s warm-up + %s measured", cfg.warmup, cfg.closedDuration)
	b.Config["rates"] = fmt.Sprint(cfg.bigcat.rates)
	b.Config["step_duration"] = cfg.stepDuration.String()
	b.Config["request_timeout"] = cfg.timeout.String()
	b.Config["max_inflight"] = strconv.Itoa(cfg.maxInFlight)
	if len(cfg.serviceEnv) > 0 {
		b.Config["service_env"] = strings.Join(cfg.serviceEnv, " ")
	}
	dir := filepath.Join(cfg.out, "bench-"+b.RunID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}

	st, err := startStack(ctx, log, cfg)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := st.stop(); err != nil {
			log.Warn("stopping the stack", "err", err)
		}
	}()
	b.Target = st.url
	b.Config["GOMAXPROCS (load generator + reference)"] = strconv.Itoa(runtime.GOMAXPROCS(0))
	client := load.NewClient(max(cfg.conns, 512), cfg.timeout)
	if err := waitReady(ctx, client, st.url); err != nil {
		return 0, err
	}

	// Sample memory from the start: generation is part of the run.
	b.PIDs = maps.Clone(st.pids)
	b.PIDs["bench"] = os.Getpid() // the load generator and the reference, holding the catalog
	sampler := procmon.NewSampler(b.PIDs)
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go sampler.Run(sctx, 200*time.Millisecond)

	gen := gencatalog.Options{Prefix: "gen", Models: cfg.bigcat.models, Parts: cfg.bigcat.parts, Seed: 1}
	t := time.Now()
	if err := generate(ctx, st.databaseURL, gen); err != nil {
		return 0, err
	}
	b.Config["generated_catalog"] = fmt.Sprintf("%d models x %d parts = %d parts (gencatalog COPY, prefix gen), written in %s",
		gen.Models, gen.Parts, gen.Models*gen.Parts, time.Since(t).Round(time.Millisecond))

	conn, err := pgx.Connect(ctx, st.databaseURL)
	if err != nil {
		return 0, fmt.Errorf("bigcat: %w", err)
	}
	defer conn.Close(context.Background())
	watchDatabase(ctx, b, sampler, st.databaseURL, cfg.durableDB)
	t = time.Now()
	data, err := bigcat.Load(ctx, conn, gen.Prefix)
	if err != nil {
		return 0, err
	}
	b.Config["reference_catalog"] = fmt.Sprintf("%d cars, %d parts read back from the database into the reference's map in %s",
		len(data.Cars), data.Count(), time.Since(t).Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "== reference holds %s\n", b.Config["reference_catalog"])
	ref, err := bigcat.Start(data)
	if err != nil {
		return 0, fmt.Errorf("bigcat reference: %w", err)
	}
	defer ref.Close()

	prog := &load.Progress{}
	prog.Reset("starting")
	stopProgress := showProgress(prog)
	defer stopProgress()

	routes := []struct {
		name     string
		ref, stk load.Scenario
		what     string
	}{
		{"bigcat parts", bigcat.Parts(ref.URL, data), bigcat.Parts(st.url, data),
			fmt.Sprintf("GET /v1/cars/{id}/parts?year=&page_size=%d[&page_token=] for a car, model year and page drawn uniformly at random", bigcat.PageSize)},
		{"bigcat get-pecas", bigcat.GetPecas(ref.URL, data), bigcat.GetPecas(st.url, data),
			"POST /get-pecas {modelo, ano} for a car and model year drawn uniformly at random (every part of the car, by name)"},
	}

	// 1. Closed loops, reference then stack, per route.
	var profWG sync.WaitGroup
	for _, r := range routes {
		c := &report.ClosedLoop{What: r.what}
		b.ClosedLoops = append(b.ClosedLoops, c)
		fmt.Fprintf(os.Stderr, "== closed loop, %s, %d connections, %s\n", r.name, cfg.conns, cfg.closedDuration)
		rsc := r.ref
		rsc.Name = r.name + " reference"
		if c.Reference, err = load.Closed(ctx, client, rsc, cfg.conns, cfg.warmup, cfg.closedDuration, prog); err != nil {
			return 0, fmt.Errorf("closed loop, %s reference: %w", r.name, err)
		}
		c.ReferenceCPU = sampler.Usage(c.Reference.Started, c.Reference.Ended)
		printStats(rsc.Name+" closed", c.Reference)
		printCPU(c.ReferenceCPU)
		sleep(ctx, cfg.settle)
		if cfg.pprof {
			capture(ctx, &profWG, b, dir, st.pprofURLs, "closed-loop "+r.name, cfg.warmup+cfg.closedDuration-time.Second)
		}
		if c.Stack, err = load.Closed(ctx, client, r.stk, cfg.conns, cfg.warmup, cfg.closedDuration, prog); err != nil {
			return 0, fmt.Errorf("closed loop, %s: %w", r.name, err)
		}
		c.StackCPU = sampler.Usage(c.Stack.Started, c.Stack.Ended)
		printStats(r.name+" closed", c.Stack)
		printCPU(c.StackCPU)
		profWG.Wait()
		if c.Reference.Achieved > 0 {
			c.Ratio = c.Stack.Achieved / c.Reference.Achieved
		}
		fmt.Fprintf(os.Stderr, "   stack / reference = %.1f %%\n", 100*c.Ratio)
		sleep(ctx, cfg.settle)
	}

	// 2. Constant arrival rates, reference then stack, per route.
	for _, r := range routes {
		for _, side := range []struct {
			name string
			sc   load.Scenario
			what string
		}{{r.name + " (reference)", r.ref, r.what + ", on the bare reference."}, {r.name, r.stk, r.what + ", through the stack."}} {
			s := &report.Series{Name: side.name, What: side.what}
			b.Series = append(b.Series, s)
			fmt.Fprintf(os.Stderr, "== open model: %s\n", side.name)
			for _, rate := range cfg.bigcat.rates {
				if ctx.Err() != nil {
					s.StoppedWhy = "run interrupted or -max-duration reached"
					break
				}
				if cfg.pprof && rate == bigcatRate && side.sc.Name == r.stk.Name {
					capture(ctx, &profWG, b, dir, st.pprofURLs, fmt.Sprintf("%s at %d req/s", r.name, rate), cfg.stepDuration-time.Second)
				}
				from := time.Now()
				stats, err := load.Open(ctx, client, side.sc, rate, cfg.stepDuration, cfg.maxInFlight, prog)
				if err != nil {
					s.StoppedWhy = fmt.Sprintf("step %d/s: %v", rate, err)
					break
				}
				profWG.Wait()
				s.Steps = append(s.Steps, stats)
				s.Memory = append(s.Memory, sampler.Peak(from, time.Now()))
				s.CPU = append(s.CPU, sampler.Usage(stats.Started, stats.Ended))
				printStats(fmt.Sprintf("%s %d/s", side.name, rate), stats)
				printCPU(s.CPU[len(s.CPU)-1])
				if why := breaks(cfg, stats); why != "" {
					s.StoppedWhy = fmt.Sprintf("at %d req/s %s", rate, why)
					break
				}
				if !sleep(ctx, cfg.settle) {
					break
				}
			}
			if s.StoppedWhy == "" {
				s.StoppedWhy = fmt.Sprintf("every offered rate up to %d req/s met the objective (P99 ≤ %s, errors ≤ %g)", cfg.bigcat.rates[len(cfg.bigcat.rates)-1], cfg.sloP99, cfg.errorBudget)
			}
		}
	}
	stopProgress()

	// 3. What the caches did, from the services' own counters.
	b.Notes = append(b.Notes, cacheCounters(ctx, client, st.pprofURLs)...)
	scancel()
	b.Memory = sampler.Peak(started, time.Now())

	// 4. The plans, on the same database, after the load.
	plans, err := bigcat.Explain(ctx, conn, data)
	if err != nil {
		b.Notes = append(b.Notes, "EXPLAIN failed: "+err.Error())
	}
	for i := range b.Profiles {
		if pr := &b.Profiles[i]; pr.Error == "" {
			pr.Top = top(ctx, pr.File, pr.Kind)
		}
	}
	b.Targets = bigcatTargets(cfg, b, plans)
	b.Finished = time.Now()
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Machine["load average at end"] = strings.Join(strings.Fields(string(la))[:3], " ")
	}
	if err := b.Write(dir); err != nil {
		return 0, fmt.Errorf("writing the report: %w", err)
	}
	if len(plans) > 0 {
		f, err := os.OpenFile(filepath.Join(dir, "report.md"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return 0, err
		}
		_, werr := f.WriteString("\n" + bigcat.Markdown(plans))
		if err := f.Close(); werr != nil || err != nil {
			return 0, fmt.Errorf("writing the plans: %v %v", werr, err)
		}
	}
	return printTargets(b, dir, cfg.strict), nil
}

func bigcatTargets(cfg *config, b *report.Bench, plans []bigcat.Explained) []report.Target {
	var ts []report.Target
	for _, c := range b.ClosedLoops {
		t := report.Target{Name: "closed loop, " + strconv.Itoa(cfg.conns) + " conns, stack / reference: " + c.What, Want: fmt.Sprintf("≥ %.0f %%, 0 errors", 100*bigcatRatio)}
		if c.Stack != nil && c.Reference != nil {
			t.Got = fmt.Sprintf("%.1f %% (%.0f / %.0f req/s), %d errors", 100*c.Ratio, c.Stack.Achieved, c.Reference.Achieved, c.Stack.Errors)
			t.Pass = c.Ratio >= bigcatRatio && c.Stack.Errors == 0 && cfg.conns == 64
		}
		ts = append(ts, t)
	}
	for _, s := range b.Series {
		if strings.HasSuffix(s.Name, "(reference)") {
			continue
		}
		t := report.Target{Name: fmt.Sprintf("%s at a constant %d req/s", s.Name, bigcatRate), Want: fmt.Sprintf("P99 ≤ %d ms, 0 errors", bigcatP99)}
		if st, _ := s.Step(bigcatRate); st != nil {
			t.Got = fmt.Sprintf("P99 %.2f ms, %d errors of %d", st.Latency.P99, st.Errors, st.Sent)
			t.Pass = st.Latency.P99 <= bigcatP99 && st.Errors == 0
		} else {
			t.Got = "not reached: stopped " + s.StoppedWhy
		}
		ts = append(ts, t)
	}
	for _, n := range []string{"gateway", "catalog", "pricing"} {
		t := report.Target{Name: "RSS of " + n + " (whole run: generation, closed loops, rates)", Want: "≤ 128 MiB"}
		if m, ok := b.Memory[n]; ok {
			t.Got = fmt.Sprintf("%s peak VmRSS (VmHWM %s)", report.MiB(m.RSS), report.MiB(m.HWM))
			t.Pass = max(m.RSS, m.HWM) <= cfg.bigcat.rss
		} else {
			t.Got = "process not found"
		}
		ts = append(ts, t)
	}
	// The statements a read runs must use an index: a sequential scan of
	// catalog.parts would read a million rows. list_cars reads every car.
	t := report.Target{Name: "the catalog's per-request queries use indexes (EXPLAIN below)", Want: "no Seq Scan"}
	if len(plans) == 0 {
		t.Got = "not explained"
	} else {
		var seq []string
		for _, p := range plans {
			if !strings.HasPrefix(p.Query, "list_cars") && strings.Contains(p.Plan+p.Generic, "Seq Scan") {
				seq = append(seq, p.Query)
			}
		}
		t.Pass = len(seq) == 0
		t.Got = "every one an index scan"
		if len(seq) > 0 {
			t.Got = "Seq Scan in: " + strings.Join(seq, "; ")
		}
	}
	ts = append(ts, t)
	return ts
}

// cacheCounters reads the caches' counters from the services' metrics: how
// many reads each cache answered, so the report says how cold the reads were.
func cacheCounters(ctx context.Context, client *http.Client, urls map[string]string) []string {
	var notes []string
	for _, svc := range []string{"gateway", "catalog"} {
		base, ok := urls[svc]
		if !ok {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
		if err != nil {
			continue
		}
		resp, err := client.Do(req)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s cache counters: %v", svc, err))
			continue
		}
		var lines []string
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, "carbuild_gateway_cache_") || strings.HasPrefix(l, "carbuild_catalog_cache_") {
				lines = append(lines, "`"+l+"`")
			}
		}
		resp.Body.Close()
		notes = append(notes, fmt.Sprintf("%s cache counters at the end of the run: %s", svc, strings.Join(lines, ", ")))
	}
	return notes
}
