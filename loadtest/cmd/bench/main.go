// Command bench measures Car Build on this machine and writes a report.
//
// In one run it:
//  1. starts a bare reference server in-process (net/http answering the same
//     JSON as POST /get-pecas from memory) and, unless -target names a running
//     gateway, the local stack;
//  2. measures POST /get-pecas in a closed loop at -conns connections against
//     both and reports the stack's throughput as a share of the reference's;
//  3. offers -overload-factor (3) times the stack's closed-loop throughput,
//     open model, for -overload-duration, and judges the overload control of
//     issue #15: goodput, the admitted requests' P99, how fast shed requests
//     are answered, the gateway's memory (overload-*.png plots);
//  4. offers constant arrival rates (open model, internal/load) step by step, per
//     series (POST /get-pecas on the reference and the stack, the mixed journey
//     health/parts/quote/order, optionally single v1 endpoints) until the P99
//     passes -slo-p99, the errors pass -error-budget or the generator can no
//     longer keep up;
//  5. samples each service's memory (VmRSS/VmHWM) throughout, optionally
//     captures pprof CPU and heap profiles, checks that every order the load
//     placed was stored, and writes results/bench-<time>/ with report.md,
//     report.json and PNG plots, judging each target of issue 5.
//
// Every phase is bounded in time; -max-duration bounds the whole run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/carbuild/carbuild/loadtest/internal/gencatalog"
	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/loadtest/internal/procmon"
	"github.com/carbuild/carbuild/loadtest/internal/reference"
	"github.com/carbuild/carbuild/loadtest/internal/report"
	"github.com/carbuild/carbuild/loadtest/internal/scenario"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if spec := os.Getenv(relayEnv); spec != "" { // the relay series' server (relay.go)
		if err := serveRelay(spec); err != nil {
			log.Error("relay failed", "err", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, log, os.Args[1:])
	if err != nil {
		log.Error("bench failed", "err", err)
		os.Exit(1)
	}
	os.Exit(code)
}

type config struct {
	target          string
	out             string
	conns           int
	warmup          time.Duration
	closedDuration  time.Duration
	rates           []int
	stepDuration    time.Duration
	settle          time.Duration
	sloP99          time.Duration
	errorBudget     float64
	series          []string
	timeout         time.Duration
	ports           map[string]int
	databaseURL     string
	pprof           bool
	pprofURLs       map[string]string
	verifyOrders    int
	maxDuration     time.Duration
	overloadFactor  float64
	overloadFor     time.Duration
	overloadConns   int
	overloadSeries  string
	strict          bool
	skipBuild       bool
	serviceLogLevel string
	serviceLogs     string
	maxInFlight     int
	genModels       int
	genParts        int
	serviceEnv      []string
	binDir          string
	pin             bool
	stackCPU        int   // with -pin: the services' CPU
	durableRates    []int // durable.go
	durableSet      bool
	durableStep     time.Duration
	durableDB       bool
	scenario        string // "" (the default run) or bigcat
	bigcat          bigcatConfig
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c := &config{}
	var rates, series, ports, pprofURLs string
	fs.StringVar(&c.target, "target", os.Getenv("BENCH_TARGET"), "base URL of a running gateway (env BENCH_TARGET); empty: build and start a private stack on free ports")
	fs.StringVar(&c.out, "out", "results", "folder for results/bench-<time>/")
	fs.IntVar(&c.conns, "conns", 64, "connections of the closed loop")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before each closed loop (not measured)")
	fs.DurationVar(&c.closedDuration, "closed-duration", 10*time.Second, "measured length of each closed loop")
	fs.StringVar(&rates, "rates", "500,1000,2000,3000,5000,7500,10000,15000", "offered rates (req/s) of the open-model steps, rising")
	fs.DurationVar(&c.stepDuration, "step-duration", 5*time.Second, "length of each open-model step")
	fs.DurationVar(&c.settle, "settle", time.Second, "pause between steps")
	fs.DurationVar(&c.sloP99, "slo-p99", 10*time.Millisecond, "stop a series when a step's P99 exceeds this")
	fs.Float64Var(&c.errorBudget, "error-budget", 0.001, "stop a series when a step's error ratio exceeds this")
	fs.StringVar(&series, "series", "reference,get-pecas,mixed", "open-model series: reference, get-pecas, mixed, relay (the mixed journey through a bare net/http + grpc-go relay to the stack's pricing: the gateway's floor), health, parts, quote, order, catalog (first page of a random generated car's parts; needs -gen-models) (comma-separated)")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Second, "per-request timeout")
	fs.StringVar(&ports, "ports", "gateway=0,catalog=50051,pricing=50052", "listening port of each service process, to find its PID for memory figures (gateway=0: the target's port)")
	fs.StringVar(&c.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL to count the stored orders (env DATABASE_URL); empty: count through the API only")
	fs.BoolVar(&c.pprof, "pprof", false, "capture CPU and heap profiles of each service (needs the services started with pprof on, see loadtest/README.md)")
	fs.StringVar(&pprofURLs, "pprof-urls", "gateway=http://127.0.0.1:9093,catalog=http://127.0.0.1:9091,pricing=http://127.0.0.1:9092", "with -target: base URL serving /debug/pprof/ per service (a started stack sets its own)")
	fs.IntVar(&c.verifyOrders, "verify-orders", 2000, "look up at most this many placed orders through GET /v1/orders/{id} (0: all)")
	fs.DurationVar(&c.maxDuration, "max-duration", 10*time.Minute, "bound on the whole run")
	fs.Float64Var(&c.overloadFactor, "overload-factor", 3, "overload phase: offer this many times the closed loop's throughput (0 skips the phase)")
	fs.DurationVar(&c.overloadFor, "overload-duration", 10*time.Second, "length of the overload phase")
	fs.StringVar(&c.overloadSeries, "overload-series", "order", "overload phase: the scenario offered (get-pecas, mixed, parts, quote, order, health); its saturation is a closed loop of it with -conns connections (get-pecas reuses the first). The default, orders, saturates the stack's database, not the load generator")
	fs.IntVar(&c.overloadConns, "overload-conns", 512, "overload phase: connections the generator keeps at most, like a fleet of keep-alive clients or a proxy; a request finding them all busy waits for one, and the wait counts in its latency")
	fs.BoolVar(&c.strict, "strict", false, "exit 2 when a target is not met")
	fs.Func("service-env", "extra NAME=value for the services the bench starts (repeatable), e.g. GOMAXPROCS=1 or GOGC=400", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("%q: want NAME=value", v)
		}
		c.serviceEnv = append(c.serviceEnv, v)
		return nil
	})
	fs.IntVar(&c.genModels, "gen-models", 0, "before measuring, generate this many car models with gencatalog (prefix gen) in the stack's database; needed by -series catalog")
	fs.IntVar(&c.genParts, "gen-parts", 100, "parts per generated model")
	fs.IntVar(&c.maxInFlight, "max-inflight", 2000, "bound on outstanding requests of an open-model step (protects the machine when the system saturates; 0: none)")
	fs.BoolVar(&c.pin, "pin", false, "run the services the bench starts on the first CPU it may use and the load generator on the others (Linux; with -durable-db the private PostgreSQL goes with the services, the shared server is never moved), so that a generator on a small machine can offer several times what the stack serves")
	fs.BoolVar(&c.skipBuild, "skip-build", false, "use the binaries already in -bin-dir when starting the stack")
	fs.StringVar(&c.binDir, "bin-dir", "", "where the stack's binaries are built or found (default bin/); with -skip-build, compare another build")
	fs.StringVar(&c.serviceLogLevel, "service-log-level", "info", "LOG_LEVEL of the services the bench starts")
	fs.StringVar(&c.serviceLogs, "service-logs", "", "file for the output of the services the bench starts (default: kept in memory, shown on failure)")
	durableFlags(fs, c)
	fs.StringVar(&c.scenario, "scenario", "", "run another benchmark instead of the default one: bigcat (issue 17 target 1, a million parts, cold reads; see the -bigcat-* flags)")
	bigcatFlags(fs, c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.scenario != "" && c.scenario != "bigcat" {
		return nil, fmt.Errorf("-scenario: unknown %q (want bigcat)", c.scenario)
	}
	for _, r := range strings.Split(rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive integer", r)
		}
		c.rates = append(c.rates, n)
	}
	if !slices.IsSorted(c.rates) {
		return nil, errors.New("-rates must rise")
	}
	known := map[string]bool{"reference": true, "get-pecas": true, "mixed": true, "relay": true, "health": true, "parts": true, "quote": true, "order": true, "catalog": true}
	for _, s := range strings.Split(series, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !known[s] {
			return nil, fmt.Errorf("-series: unknown %q", s)
		}
		c.series = append(c.series, s)
	}
	var err error
	if c.ports, err = parseMap(ports, strconv.Atoi); err != nil {
		return nil, fmt.Errorf("-ports: %w", err)
	}
	if c.pprofURLs, err = parseMap(pprofURLs, func(s string) (string, error) { return s, nil }); err != nil {
		return nil, fmt.Errorf("-pprof-urls: %w", err)
	}
	if !slices.Contains([]string{"get-pecas", "mixed", "parts", "quote", "order", "health"}, c.overloadSeries) {
		return nil, fmt.Errorf("-overload-series: unknown %q", c.overloadSeries)
	}
	if slices.Contains(c.series, "catalog") && c.genModels <= 0 {
		return nil, errors.New("-series catalog needs -gen-models N (a generated catalog to browse)")
	}
	if c.conns <= 0 || c.stepDuration <= 0 || c.closedDuration <= 0 {
		return nil, errors.New("-conns, -step-duration and -closed-duration must be positive")
	}
	return c, nil
}

func parseMap[V any](s string, parse func(string) (V, error)) (map[string]V, error) {
	m := map[string]V{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want name=value", kv)
		}
		pv, err := parse(v)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", kv, err)
		}
		m[k] = pv
	}
	return m, nil
}

func run(ctx context.Context, log *slog.Logger, args []string) (int, error) {
	cfg, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil
		}
		return 0, err
	}
	if cfg.scenario == "bigcat" {
		return runBigcat(ctx, log, cfg, args)
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
	b.Config["conns"] = strconv.Itoa(cfg.conns)
	b.Config["closed_loop"] = fmt.Sprintf("%s warm-up + %s measured", cfg.warmup, cfg.closedDuration)
	b.Config["rates"] = fmt.Sprint(cfg.rates)
	b.Config["step_duration"] = cfg.stepDuration.String()
	b.Config["slo_p99"] = cfg.sloP99.String()
	b.Config["error_budget"] = strconv.FormatFloat(cfg.errorBudget, 'g', -1, 64)
	b.Config["series"] = strings.Join(cfg.series, ",")
	b.Config["request_timeout"] = cfg.timeout.String()
	b.Config["max_inflight"] = strconv.Itoa(cfg.maxInFlight)
	b.Config["overload"] = fmt.Sprintf("%g× the closed loop for %s over at most %d connections", cfg.overloadFactor, cfg.overloadFor, cfg.overloadConns)
	if len(cfg.serviceEnv) > 0 {
		b.Config["service_env"] = strings.Join(cfg.serviceEnv, " ")
	}
	var genCPUs unix.CPUSet
	if cfg.pin {
		if cfg.target != "" {
			return 0, errors.New("-pin moves the services the bench starts: not with -target")
		}
		if cfg.stackCPU, genCPUs, err = splitCPUs(); err != nil {
			return 0, err
		}
	}

	dir := filepath.Join(cfg.out, "bench-"+b.RunID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}

	// Reference server, in-process.
	ref, err := reference.Start()
	if err != nil {
		return 0, fmt.Errorf("reference: %w", err)
	}
	defer ref.Close()

	// The stack.
	st, err := startStack(ctx, log, cfg)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := st.stop(); err != nil {
			log.Warn("stopping the stack", "err", err)
		}
	}()
	if cfg.pin {
		// After the build: the compiler may use every CPU.
		if err := pinSelf(genCPUs); err != nil {
			return 0, err
		}
		db := "PostgreSQL not moved"
		if cfg.durableDB && st.databaseURL != "" {
			n, err := pinServer(ctx, st.databaseURL, cfg.stackCPU)
			if err != nil {
				return 0, err
			}
			db = fmt.Sprintf("the private PostgreSQL's %d processes with the services", n)
		}
		b.Config["pinned"] = fmt.Sprintf("services on CPU %d, load generator + reference on %d other CPU(s); %s", cfg.stackCPU, genCPUs.Count(), db)
	}
	b.Config["GOMAXPROCS (load generator + reference)"] = strconv.Itoa(runtime.GOMAXPROCS(0))
	b.Target = st.url
	if st.databaseURL != "" { // the stack the bench started: count in its database
		cfg.databaseURL = st.databaseURL
	}
	client := load.NewClient(max(cfg.conns, 512), cfg.timeout)
	if err := waitReady(ctx, client, st.url); err != nil {
		return 0, err
	}

	// A large generated catalog, when asked for.
	gen := gencatalog.Options{Prefix: "gen", Models: cfg.genModels, Parts: cfg.genParts, Seed: 1}
	if cfg.genModels > 0 {
		if err := generate(ctx, cfg.databaseURL, gen); err != nil {
			return 0, err
		}
		b.Config["generated_catalog"] = fmt.Sprintf("%d models x %d parts (gencatalog, prefix gen)", gen.Models, gen.Parts)
	}

	// Processes to watch.
	b.PIDs = st.pids
	if len(b.PIDs) == 0 {
		b.PIDs = findPIDs(log, cfg, st.url)
	}
	b.PIDs = maps.Clone(b.PIDs)
	b.PIDs["bench"] = os.Getpid() // the load generator (and the in-process reference)
	relayURL := ""
	if slices.Contains(cfg.series, "relay") {
		if st.pricingAddr == "" {
			return 0, errors.New("the relay series needs the stack the bench starts (not -target): it calls that stack's pricing")
		}
		rp, err := startRelay(ctx, st.pricingAddr, st.url+scenario.PartsPath)
		if err != nil {
			return 0, err
		}
		defer func() { _ = rp.stop() }()
		relayURL = rp.url
		b.PIDs["relay"] = rp.pid
		b.Config["relay"] = "net/http + protojson + a plain grpc-go client of the stack's pricing (package reference, Relay)"
	}
	sampler := procmon.NewSampler(b.PIDs)
	watchDatabase(ctx, b, sampler, cfg.databaseURL, cfg.durableDB)
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go sampler.Run(sctx, 200*time.Millisecond)

	prog := &load.Progress{}
	prog.Reset("starting")
	stopProgress := showProgress(prog)
	defer stopProgress()

	// Quote the baskets once: the mixed journey's orders carry these totals.
	baskets := scenario.DefaultBaskets()
	needsBaskets := slices.ContainsFunc(append(slices.Clone(cfg.series), cfg.overloadSeries), func(s string) bool { return s == "mixed" || s == "quote" || s == "order" })
	if needsBaskets {
		if err := scenario.Quote(ctx, client, st.url, baskets); err != nil {
			return 0, fmt.Errorf("preparing the baskets: %w", err)
		}
	}
	orders := scenario.NewOrders("bench-" + b.RunID + "-")

	// 1. Closed loop.
	refSc := scenario.GetPecas(ref.URL)
	refSc.Name = "reference get-pecas"
	stackSc := scenario.GetPecas(st.url)
	fmt.Fprintf(os.Stderr, "== closed loop, %d connections, %s\n", cfg.conns, cfg.closedDuration)
	if b.Closed.Reference, err = load.Closed(ctx, client, refSc, cfg.conns, cfg.warmup, cfg.closedDuration, prog); err != nil {
		return 0, fmt.Errorf("closed loop, reference: %w", err)
	}
	b.Closed.ReferenceCPU = sampler.Usage(b.Closed.Reference.Started, b.Closed.Reference.Ended)
	printStats("reference get-pecas closed", b.Closed.Reference)
	printCPU(b.Closed.ReferenceCPU)
	var profWG sync.WaitGroup
	if cfg.pprof {
		capture(ctx, &profWG, b, dir, st.pprofURLs, "closed-loop get-pecas", cfg.warmup+cfg.closedDuration-time.Second)
	}
	if b.Closed.Stack, err = load.Closed(ctx, client, stackSc, cfg.conns, cfg.warmup, cfg.closedDuration, prog); err != nil {
		return 0, fmt.Errorf("closed loop, stack: %w", err)
	}
	b.Closed.StackCPU = sampler.Usage(b.Closed.Stack.Started, b.Closed.Stack.Ended)
	printStats("stack get-pecas closed", b.Closed.Stack)
	printCPU(b.Closed.StackCPU)
	profWG.Wait()
	if b.Closed.Reference.Achieved > 0 {
		b.Closed.Ratio = b.Closed.Stack.Achieved / b.Closed.Reference.Achieved
	}
	fmt.Fprintf(os.Stderr, "   stack / reference = %.1f %%\n", 100*b.Closed.Ratio)

	// 2. Overload: a scenario's closed-loop throughput, several times over.
	var ov *overload
	if cfg.overloadFactor > 0 && b.Closed.Stack != nil && ctx.Err() == nil {
		osc, _ := seriesScenario(cfg.overloadSeries, ref.URL, st.url, relayURL, baskets, orders, gen)
		sat := b.Closed.Stack
		var satU procmon.Usage
		if cfg.overloadSeries != "get-pecas" {
			conns := saturationConns(ctx, client, st.pprofURLs["gateway"], cfg.conns)
			if conns != cfg.conns {
				b.Notes = append(b.Notes, fmt.Sprintf("overload phase: the saturation loop used %d connections, the gateway's admission limit (not -conns %d): with more, the loop itself is shed and spins on 503s", conns, cfg.conns))
			}
			fmt.Fprintf(os.Stderr, "== closed loop, %s, %d connections, %s: the overload phase's saturation\n", cfg.overloadSeries, conns, cfg.closedDuration)
			if sat, err = load.Closed(ctx, client, osc, conns, cfg.warmup, cfg.closedDuration, prog); err != nil {
				return 0, fmt.Errorf("closed loop, %s: %w", cfg.overloadSeries, err)
			}
			printStats(cfg.overloadSeries+" closed", sat)
			satU = sampler.Usage(sat.Started, sat.Ended)
			printCPU(satU)
			sleep(ctx, cfg.settle)
		}
		fmt.Fprintf(os.Stderr, "== overload: %.0f× the %s closed loop's %.0f req/s, %s\n", cfg.overloadFactor, cfg.overloadSeries, sat.Achieved, cfg.overloadFor)
		// Without a bound, every request that waits opens one more
		// connection: the stack then spends its CPU accepting connections,
		// not answering, and the phase measures a connection storm.
		oclient := load.NewClient(cfg.overloadConns, cfg.timeout)
		oclient.Transport.(*http.Transport).MaxConnsPerHost = cfg.overloadConns
		gw := st.pprofURLs["gateway"] // its operations listener
		shed0, errS := scrapeTimes(ctx, client, gw, "503", "0.005")
		ok0, errA := scrapeTimes(ctx, client, gw, "200", "0.05")
		var profWG sync.WaitGroup
		if cfg.pprof {
			capture(ctx, &profWG, b, dir, st.pprofURLs, "overload", cfg.overloadFor-time.Second)
		}
		ov, err = runOverload(ctx, oclient, osc, sat, cfg.overloadFactor, cfg.overloadFor, sampler)
		profWG.Wait()
		if ov != nil && cfg.overloadSeries != "get-pecas" {
			ovU := sampler.Usage(ov.Started, ov.Ended)
			ov.Cost = &overloadCost{
				Saturation:     perRequest(satU, sat.Ended.Sub(sat.Started).Seconds(), float64(sat.OK)),
				Overload:       perRequest(ovU, ov.Ended.Sub(ov.Started).Seconds(), float64(ov.Admitted)),
				SaturationCPUs: satU.CPUs, OverloadCPUs: ovU.CPUs,
			}
		}
		if err != nil {
			b.Notes = append(b.Notes, "overload phase: "+err.Error())
		}
		if ov != nil && errS == nil && errA == nil {
			shed1, errS := scrapeTimes(ctx, client, gw, "503", "0.005")
			ok1, errA := scrapeTimes(ctx, client, gw, "200", "0.05")
			if errS == nil && errA == nil {
				s, a := shed1.minus(shed0), ok1.minus(ok0)
				ov.ServerShed, ov.ServerAdmitted = &s, &a
			}
		}
		if ov != nil {
			fmt.Fprintf(os.Stderr, "   offered %.0f req/s: goodput %.0f req/s, admitted %d (P99 %.1f ms%s), shed %d (max %.2f ms%s), other %d\n",
				ov.Offered, ov.Goodput, ov.Admitted, ov.AdmittedP99, ov.ServerAdmitted.text("200", "50 ms"), ov.Shed, ov.ShedMax, ov.ServerShed.text("503", "5 ms"), ov.Other)
			if ov.Cost != nil {
				fmt.Fprintf(os.Stderr, "   %s\n", ov.Cost.text())
			}
			if files, err := ov.plot(dir); err != nil {
				b.Notes = append(b.Notes, "overload plot: "+err.Error())
			} else {
				b.Notes = append(b.Notes, fmt.Sprintf("overload phase (issue #15): %s, %.0f req/s offered for %s (%.0f× its closed loop's %.0f req/s); plots: %s",
					cfg.overloadSeries, ov.Offered, cfg.overloadFor, cfg.overloadFactor, ov.Saturation, files))
			}
		}
		sleep(ctx, cfg.settle)
	}

	// 3. Open-model series.
	for _, name := range cfg.series {
		sc, what := seriesScenario(name, ref.URL, st.url, relayURL, baskets, orders, gen)
		s := &report.Series{Name: name, What: what}
		b.Series = append(b.Series, s)
		fmt.Fprintf(os.Stderr, "== open model: %s\n", name)
		for _, rate := range cfg.rates {
			if ctx.Err() != nil {
				s.StoppedWhy = "run interrupted or -max-duration reached"
				break
			}
			// Profile the mixed journey at its first step and at 2,000 req/s
			// (the target load), whichever it reaches.
			if cfg.pprof && name == "mixed" && (rate == 2000 || rate == cfg.rates[0]) {
				capture(ctx, &profWG, b, dir, st.pprofURLs, fmt.Sprintf("mixed journey at %d req/s", rate), cfg.stepDuration-time.Second)
			}
			from := time.Now()
			stats, err := load.Open(ctx, client, sc, rate, cfg.stepDuration, cfg.maxInFlight, prog)
			if err != nil {
				s.StoppedWhy = fmt.Sprintf("step %d/s: %v", rate, err)
				break
			}
			profWG.Wait()
			s.Steps = append(s.Steps, stats)
			s.Memory = append(s.Memory, sampler.Peak(from, time.Now()))
			s.CPU = append(s.CPU, sampler.Usage(stats.Started, stats.Ended))
			printStats(fmt.Sprintf("%s %d/s", name, rate), stats)
			printCPU(s.CPU[len(s.CPU)-1])
			if name == "mixed" || name == "relay" {
				printFront(s.CPU[len(s.CPU)-1], stats)
			}
			if why := breaks(cfg, stats); why != "" {
				s.StoppedWhy = fmt.Sprintf("at %d req/s %s", rate, why)
				break
			}
			if !sleep(ctx, cfg.settle) {
				break
			}
		}
		if s.StoppedWhy == "" {
			s.StoppedWhy = fmt.Sprintf("every offered rate up to %d req/s met the objective (P99 ≤ %s, errors ≤ %g)", cfg.rates[len(cfg.rates)-1], cfg.sloP99, cfg.errorBudget)
		}
	}
	// Orders alone at constant rates, durably (durable.go).
	if err := runDurable(ctx, client, cfg, b, dir, st.url, st.pprofURLs, baskets, sampler, prog); err != nil {
		b.Notes = append(b.Notes, err.Error())
	}
	stopProgress()

	// 4. Orders: every confirmed order must be stored.
	if orders.Count() > 0 {
		fmt.Fprintf(os.Stderr, "== verifying %d orders\n", orders.Count())
		v := orders.Verify(ctx, client, st.url, cfg.verifyOrders, 8)
		v.DBCount, v.DBNote = countOrders(ctx, cfg.databaseURL, orders.KeyPrefix)
		b.Orders = &v
		fmt.Fprintf(os.Stderr, "   confirmed %d, found via API %d/%d, in database %d %s\n", v.Confirmed, v.Found, v.Checked, v.DBCount, v.DBNote)
	}

	scancel()
	b.Memory = sampler.Peak(started, time.Now())
	// Summaries only now: `go tool pprof` may first have to build itself,
	// which must not overlap the measurements.
	for i := range b.Profiles {
		if pr := &b.Profiles[i]; pr.Error == "" {
			pr.Top = top(ctx, pr.File, pr.Kind)
		}
	}
	b.Targets = judgeTargets(cfg, b)
	if ov != nil {
		b.Targets = append(b.Targets, ov.targets(cfg.overloadFactor)...)
	}
	b.Finished = time.Now()
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Machine["load average at end"] = strings.Join(strings.Fields(string(la))[:3], " ")
	}
	if err := b.Write(dir); err != nil {
		return 0, fmt.Errorf("writing the report: %w", err)
	}
	return printTargets(b, dir, cfg.strict), nil
}

func seriesScenario(name, refURL, stackURL, relayURL string, baskets []*scenario.Basket, orders *scenario.Orders, gen gencatalog.Options) (load.Scenario, string) {
	switch name {
	case "catalog":
		return scenario.GeneratedParts(stackURL, gen.Models, gen.Parts, gen.CarID),
			fmt.Sprintf("GET /v1/cars/{id}/parts?page_size=50 for a car drawn at random from %d generated models of %d parts each.", gen.Models, gen.Parts)
	case "reference":
		sc := scenario.GetPecas(refURL)
		sc.Name = "reference"
		return sc, "POST /get-pecas {Civic} on the bare in-process reference server."
	case "get-pecas":
		return scenario.GetPecas(stackURL), "POST /get-pecas {Civic} through the stack (gateway → catalog)."
	case "relay":
		return scenario.Mixed("relay", relayURL, baskets, orders, nil),
			"The mixed journey through the relay: net/http, protojson and one plain grpc-go connection to the stack's pricing, /health and the parts page from memory; no grpc-gateway, middleware, metrics or cache (the gateway's floor)."
	case "mixed":
		return scenario.Mixed("mixed", stackURL, baskets, orders, nil),
			"Mixed journey through the stack: GET /health, GET /v1/cars/civic/parts, POST /v1/quotes, POST /v1/orders in equal weight; each order has a fresh idempotency key and the quoted total."
	default:
		kind := map[string]string{"health": scenario.KindHealth, "parts": scenario.KindParts, "quote": scenario.KindQuote, "order": scenario.KindOrder}[name]
		return scenario.Mixed(name, stackURL, baskets, orders, []string{kind}), kind + " alone through the stack."
	}
}

// breaks says why a step ends its series, or "".
func breaks(cfg *config, s *load.Stats) string {
	switch {
	case s.ErrorRatio > cfg.errorBudget:
		return fmt.Sprintf("errors %.3f %% > budget %.3f %%", 100*s.ErrorRatio, 100*cfg.errorBudget)
	case s.Latency.P99 > float64(cfg.sloP99)/float64(time.Millisecond):
		return fmt.Sprintf("P99 %.2f ms > objective %s", s.Latency.P99, cfg.sloP99)
	case float64(s.Sent) < 0.9*s.Offered*cfg.stepDuration.Seconds():
		return fmt.Sprintf("the load generator sent only %d of %.0f requests (generator saturated, or -max-inflight %d outstanding requests reached)", s.Sent, s.Offered*cfg.stepDuration.Seconds(), cfg.maxInFlight)
	case s.Achieved < 0.9*s.Offered:
		return fmt.Sprintf("achieved %.0f ok/s < 90 %% of offered", s.Achieved)
	}
	return ""
}

func judgeTargets(cfg *config, b *report.Bench) []report.Target {
	var ts []report.Target
	// Closed loop ratio.
	t := report.Target{Name: "POST /get-pecas closed loop, " + strconv.Itoa(cfg.conns) + " conns: stack / reference", Want: "≥ 40 %, 0 errors"}
	if b.Closed.Stack != nil {
		t.Got = fmt.Sprintf("%.1f %% (%.0f / %.0f req/s), %d errors", 100*b.Closed.Ratio, b.Closed.Stack.Achieved, b.Closed.Reference.Achieved, b.Closed.Stack.Errors)
		t.Pass = b.Closed.Ratio >= 0.40 && b.Closed.Stack.Errors == 0 && cfg.conns == 64
	}
	ts = append(ts, t)

	series := func(name string) *report.Series {
		for _, s := range b.Series {
			if s.Name == name {
				return s
			}
		}
		return nil
	}
	step := func(name string, rate float64, p99 float64, want string) report.Target {
		t := report.Target{Name: fmt.Sprintf("%s at a constant %.0f req/s", name, rate), Want: want}
		s := series(name)
		if s == nil {
			t.Got = "not measured (series not run)"
			return t
		}
		st, _ := s.Step(rate)
		if st == nil {
			t.Got = "not reached: stopped " + s.StoppedWhy
			return t
		}
		t.Got = fmt.Sprintf("P99 %.2f ms, %d errors of %d", st.Latency.P99, st.Errors, st.Sent)
		t.Pass = st.Latency.P99 <= p99 && st.Errors == 0
		return t
	}
	ts = append(ts, step("get-pecas", 2000, 5, "P99 ≤ 5 ms, 0 errors"))
	ts = append(ts, step("get-pecas", 5000, 10, "P99 ≤ 10 ms, 0 errors"))
	m := step("mixed", 2000, 10, "P99 ≤ 10 ms, 0 errors, every order stored")
	if o := b.Orders; o != nil {
		// Every 2xx order must be stored. The database may hold more: orders
		// whose answer came after the client's timeout.
		stored := o.Confirmed > 0 && o.Found == o.Checked && (o.DBCount < 0 || o.DBCount >= o.Confirmed)
		db := "database not counted"
		if o.DBCount >= 0 {
			db = fmt.Sprintf("%d in the database", o.DBCount)
			if o.DBCount > o.Confirmed {
				db += fmt.Sprintf(" (%d stored but answered after the client timeout or with an error)", o.DBCount-o.Confirmed)
			}
		}
		m.Got += fmt.Sprintf("; orders: %d confirmed, %d/%d found via API, %s", o.Confirmed, o.Found, o.Checked, db)
		m.Pass = m.Pass && stored
	} else if series("mixed") != nil {
		m.Got += "; no order confirmed"
		m.Pass = false
	}
	ts = append(ts, m)

	// Memory at the target loads: get-pecas ≤ 5000 req/s, mixed ≤ 2000 req/s.
	peak := map[string]int64{}
	for _, s := range b.Series {
		limit := map[string]float64{"get-pecas": 5000, "mixed": 2000}[s.Name]
		for i, st := range s.Steps {
			if st.Offered > limit || i >= len(s.Memory) {
				continue
			}
			for n, mem := range s.Memory[i] {
				peak[n] = max(peak[n], mem.RSS)
			}
		}
	}
	for _, n := range []string{"gateway", "catalog", "pricing"} {
		t := report.Target{Name: "RSS of " + n + " at those loads", Want: "< 64 MiB"}
		if v, ok := peak[n]; ok {
			t.Got = report.MiB(v) + " peak VmRSS"
			t.Pass = v < 64<<20
		} else if _, watched := b.PIDs[n]; watched {
			t.Got = "no sample during the target steps"
		} else {
			t.Got = "process not found (see -ports)"
		}
		ts = append(ts, t)
	}
	return ts
}

func printStats(label string, s *load.Stats) {
	clearLine()
	fmt.Fprintf(os.Stderr, "   %-32s ok %8.0f/s  sent %7d  errors %5d  P50 %7.2f  P95 %7.2f  P99 %7.2f  max %8.2f ms\n",
		label, s.Achieved, s.Sent, s.Errors, s.Latency.P50, s.Latency.P95, s.Latency.P99, s.Latency.Max)
	for r, n := range s.Reasons {
		fmt.Fprintf(os.Stderr, "      %d × %s\n", n, r)
	}
}

// printFront prints the CPU per request of the process in front of the
// mixed journey's backends: the gateway, or the relay.
func printFront(u procmon.Usage, st *load.Stats) {
	per := perRequest(u, st.Ended.Sub(st.Started).Seconds(), float64(st.OK))
	var parts []string
	for _, n := range []string{"gateway", "relay"} {
		if u.Process[n] > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f µs", n, per[n]))
		}
	}
	fmt.Fprintf(os.Stderr, "      cpu per request: %s (busy share ÷ answered requests)\n", strings.Join(parts, ", "))
}

func printCPU(u procmon.Usage) {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(u.Process)) {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", n, u.Process[n]))
	}
	fmt.Fprintf(os.Stderr, "      cpu: %s; machine busy %.0f%% (other processes %.0f%% of one core; each CPU %s %%)\n", strings.Join(parts, ", "), u.Machine, u.Others, percents(u.CPUs))
}

var stderrIsTTY = func() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}()

func clearLine() {
	if stderrIsTTY {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}

// showProgress prints the live counters every second (in place on a terminal,
// every 5 s as lines otherwise) until the returned func is called.
func showProgress(p *load.Progress) func() {
	done := make(chan struct{})
	var once sync.Once
	every := 5 * time.Second
	if stderrIsTTY {
		every = time.Second
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if stderrIsTTY {
					fmt.Fprintf(os.Stderr, "\r\033[K   … %s", p)
				} else {
					fmt.Fprintf(os.Stderr, "   … %s\n", p)
				}
			}
		}
	}()
	return func() { once.Do(func() { close(done); clearLine() }) }
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func waitReady(ctx context.Context, client *http.Client, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		for _, path := range []string{"/readyz", "/health"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			resp, err := client.Do(req)
			if err != nil {
				last = err.Error()
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", path, resp.Status)
			if resp.StatusCode != http.StatusNotFound {
				break
			}
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return fmt.Errorf("%s not ready within 30 s: %s", base, last)
		}
	}
}

func findPIDs(log *slog.Logger, cfg *config, target string) map[string]int {
	pids := map[string]int{}
	u, err := url.Parse(target)
	if err != nil {
		return pids
	}
	for name, port := range cfg.ports {
		if port == 0 && name == "gateway" {
			port, _ = strconv.Atoi(u.Port())
			if port == 0 {
				port = 80
			}
		}
		pid, err := procmon.PIDByPort(port)
		if err != nil {
			log.Warn("no memory figures for a service", "service", name, "err", err)
			continue
		}
		if pid == os.Getpid() {
			continue
		}
		pids[name] = pid
	}
	return pids
}

// generate loads the generated catalog with gencatalog.
func generate(ctx context.Context, databaseURL string, o gencatalog.Options) error {
	if databaseURL == "" {
		return errors.New("-gen-models needs the stack's database: let the bench start the stack, or pass -database-url")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("generated catalog: %w", err)
	}
	defer conn.Close(context.Background())
	fmt.Fprintf(os.Stderr, "== generating %d models x %d parts\n", o.Models, o.Parts)
	res, err := gencatalog.Generate(ctx, conn, o)
	if err != nil {
		return fmt.Errorf("generated catalog: %w", err)
	}
	fmt.Fprintf(os.Stderr, "   %d cars, %d parts (unchanged %v) in %s\n", res.Cars, res.Parts, res.Unchanged, res.Took.Round(time.Millisecond))
	return nil
}

// countOrders counts the orders stored with this run's idempotency keys.
func countOrders(ctx context.Context, databaseURL, prefix string) (int, string) {
	if databaseURL == "" {
		return -1, "not counted (no DATABASE_URL)"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return -1, "not counted: " + err.Error()
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM orders.orders WHERE starts_with(idempotency_key, $1)`, prefix).Scan(&n); err != nil {
		return -1, "not counted: " + err.Error()
	}
	return n, ""
}

// capture fetches a CPU profile of each service over d (in the background;
// wg tells when they are done), then a heap profile, into dir/pprof/.
func capture(ctx context.Context, wg *sync.WaitGroup, b *report.Bench, dir string, urls map[string]string, phase string, d time.Duration) {
	pdir := filepath.Join(dir, "pprof")
	_ = os.MkdirAll(pdir, 0o755)
	secs := max(int(d.Seconds()), 1)
	// "mixed journey at 500 req/s" → "mixed-journey-500rps"
	slug := strings.NewReplacer(" at ", "-", " req/s", "rps", " ", "-", "/", "").Replace(phase)
	var mu sync.Mutex
	for _, svc := range slices.Sorted(maps.Keys(urls)) {
		base := urls[svc]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, kind := range []string{"cpu", "heap"} {
				path := "/debug/pprof/profile?seconds=" + strconv.Itoa(secs)
				if kind == "heap" {
					path = "/debug/pprof/heap"
				}
				file := filepath.Join(pdir, fmt.Sprintf("%s-%s.%s.pb.gz", slug, svc, kind))
				pr := report.Profile{Service: svc, Phase: phase, Kind: kind, File: file}
				if err := fetch(ctx, base+path, file, time.Duration(secs+10)*time.Second); err != nil {
					pr.Error = err.Error()
				}
				mu.Lock()
				b.Profiles = append(b.Profiles, pr)
				mu.Unlock()
			}
		}()
	}
}

func fetch(ctx context.Context, u, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s (is pprof enabled on this service?)", u, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// top summarises a profile with `go tool pprof -top` (when go is on PATH).
func top(ctx context.Context, file, kind string) string {
	args := []string{"tool", "pprof", "-top", "-nodecount=25"}
	if kind == "heap" {
		args = append(args, "-sample_index=inuse_space")
	} else {
		args = append(args, "-cum")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", append(args, file)...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func machine() map[string]string {
	m := map[string]string{
		"CPUs":      strconv.Itoa(runtime.NumCPU()),
		"Go":        runtime.Version(),
		"OS/arch":   runtime.GOOS + "/" + runtime.GOARCH,
		"load note": "load generator, reference and stack share this machine",
	}
	if h, err := os.Hostname(); err == nil {
		m["host"] = h
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, v, _ := strings.Cut(l, ":")
				m["CPU"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["load average at start"] = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

// printTargets lists each target's verdict and the report's path; with
// strict, a target not met makes the exit code 2.
func printTargets(b *report.Bench, dir string, strict bool) int {
	failed := 0
	fmt.Fprintln(os.Stderr, "== targets")
	for _, t := range b.Targets {
		res := "PASS"
		if !t.Pass {
			res = "FAIL"
			failed++
		}
		fmt.Fprintf(os.Stderr, "   %s  %-60s want %-28s got %s\n", res, t.Name, t.Want, t.Got)
	}
	fmt.Fprintf(os.Stderr, "report: %s\n", filepath.Join(dir, "report.md"))
	if failed > 0 && strict {
		return 2
	}
	return 0
}
