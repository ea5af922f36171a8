// Command experiments reproduces the earlier system's Locust experiment matrix
// against Car Build: 2,500 / 5,000 / 7,500 users, spawned at 100 users/s, for
// 3 minutes each, per overlay (one target URL per overlay). -scale shrinks
// users and duration together to what one machine can generate (-scale 0.1:
// 250 / 500 / 750 users for 18 s). Each step runs Locust headless with the
// shopper journeys of loadtest/locustfile.py (locally, or distributed with
// -workers N: one master and N workers on this machine) and the command writes
// one comparative report (Markdown and PNG plots of throughput, latency
// percentiles and failures per step) from Locust's CSV statistics under
// results/experiments-<time>/.
//
//	go run ./loadtest/cmd/experiments -target local=http://127.0.0.1:8000 -scale 0.1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/carbuild/carbuild/loadtest/internal/locustcsv"
	"github.com/carbuild/carbuild/loadtest/internal/report"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, os.Args[1:]); err != nil {
		log.Error("experiments failed", "err", err)
		os.Exit(1)
	}
}

type target struct{ name, url string }

type targets []target

func (t *targets) String() string { return fmt.Sprint(*t) }
func (t *targets) Set(v string) error {
	name, u, ok := strings.Cut(v, "=")
	if !ok {
		name, u = "local", v
	}
	if !strings.HasPrefix(u, "http://127.0.0.1") && !strings.HasPrefix(u, "http://localhost") && os.Getenv("EXPERIMENTS_ALLOW_REMOTE") == "" {
		return fmt.Errorf("%q: load stays on this machine (127.0.0.1/localhost); set EXPERIMENTS_ALLOW_REMOTE=1 to aim elsewhere", u)
	}
	*t = append(*t, target{name, strings.TrimRight(u, "/")})
	return nil
}

type config struct {
	targets    targets
	users      []int
	scale      float64
	duration   time.Duration
	spawnRate  float64
	workers    int
	api        string
	client     string
	locustfile string
	locust     string
	out        string
	pause      time.Duration
}

type step struct {
	Overlay  string
	Users    int
	Duration time.Duration
	Prefix   string
	Stats    *locustcsv.Stats
	History  []locustcsv.Sample
	Failures []locustcsv.Failure
	CPUWarn  bool
	Err      string
}

func run(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("experiments", flag.ContinueOnError)
	c := &config{}
	var users string
	fs.Var(&c.targets, "target", "overlay=URL of a gateway to load (repeat per overlay; plain URL = overlay \"local\")")
	fs.StringVar(&users, "users", "2500,5000,7500", "user counts of the steps (before -scale)")
	fs.Float64Var(&c.scale, "scale", 0.1, "scale users and duration by this factor (1 = the earlier experiments)")
	fs.DurationVar(&c.duration, "duration", 3*time.Minute, "length of each step (before -scale)")
	fs.Float64Var(&c.spawnRate, "spawn-rate", 100, "users started per second")
	fs.IntVar(&c.workers, "workers", 0, "Locust workers on this machine (0: one local process; N: master + N workers)")
	fs.StringVar(&c.api, "api", "compat", "API surface the shoppers use: compat (the earlier routes) or v1")
	fs.StringVar(&c.client, "client", "fast", "Locust HTTP client: fast (geventhttpclient) or requests")
	fs.StringVar(&c.locustfile, "locustfile", "", "locustfile (default: loadtest/locustfile.py or ./locustfile.py)")
	fs.StringVar(&c.locust, "locust", "locust", "Locust command (Debian python3-locust)")
	fs.StringVar(&c.out, "out", "results", "folder for results/experiments-<time>/")
	fs.DurationVar(&c.pause, "pause", 5*time.Second, "pause between steps")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(c.targets) == 0 {
		return errors.New("give at least one -target overlay=URL (e.g. -target local=http://127.0.0.1:8000)")
	}
	for _, u := range strings.Split(users, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(u))
		if err != nil || n <= 0 {
			return fmt.Errorf("-users: %q", u)
		}
		c.users = append(c.users, n)
	}
	if c.scale <= 0 || c.scale > 10 {
		return fmt.Errorf("-scale %g: want (0, 10]", c.scale)
	}
	if c.api != "compat" && c.api != "v1" {
		return fmt.Errorf("-api %q: want compat or v1", c.api)
	}
	if c.locustfile == "" {
		for _, p := range []string{"loadtest/locustfile.py", "locustfile.py"} {
			if _, err := os.Stat(p); err == nil {
				c.locustfile = p
				break
			}
		}
		if c.locustfile == "" {
			return errors.New("no locustfile found: pass -locustfile")
		}
	}
	if _, err := exec.LookPath(c.locust); err != nil {
		return fmt.Errorf("%s not found: apt-get install -y --no-install-recommends python3-locust", c.locust)
	}

	started := time.Now()
	dir := filepath.Join(c.out, "experiments-"+started.UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dur := time.Duration(math.Max(float64(c.duration)*c.scale, float64(5*time.Second))).Round(time.Second)
	var steps []*step
	for _, t := range c.targets {
		for _, u := range c.users {
			n := max(1, int(math.Round(float64(u)*c.scale)))
			s := &step{Overlay: t.name, Users: n, Duration: dur, Prefix: filepath.Join(dir, fmt.Sprintf("%s-u%d", t.name, n))}
			steps = append(steps, s)
			fmt.Fprintf(os.Stderr, "== %s: %d users, spawn %g/s, %s (%s API, %s client, %d workers)\n", t.name, n, c.spawnRate, dur, c.api, c.client, c.workers)
			if err := runLocust(ctx, c, t, s); err != nil {
				s.Err = err.Error()
				log.Warn("step failed", "overlay", t.name, "users", n, "err", err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := collect(s); err != nil {
				s.Err = strings.TrimSpace(s.Err + "; " + err.Error())
			} else {
				tot := s.Stats.Total
				fmt.Fprintf(os.Stderr, "   %d requests, %d failures, %.0f req/s, P50 %.0f ms, P95 %.0f ms, P99 %.0f ms\n",
					tot.Requests, tot.Failures, tot.RPS, tot.Pct["50%"], tot.Pct["95%"], tot.Pct["99%"])
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(c.pause):
			}
		}
	}
	md, err := writeReport(dir, c, steps, started)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "report: %s\n", md)
	return nil
}

// runLocust runs one step, bounded in time: the run time plus the spawn time
// plus a minute of grace, after which the whole process group is killed.
func runLocust(ctx context.Context, c *config, t target, s *step) error {
	spawn := time.Duration(float64(s.Users)/c.spawnRate*float64(time.Second)) + time.Second
	ctx, cancel := context.WithTimeout(ctx, s.Duration+spawn+time.Minute)
	defer cancel()
	env := append(os.Environ(), "CARBUILD_API="+c.api, "CARBUILD_CLIENT="+c.client)
	common := []string{"-f", c.locustfile}
	headless := []string{"--headless", "-u", strconv.Itoa(s.Users), "-r", strconv.FormatFloat(c.spawnRate, 'g', -1, 64),
		"-t", fmt.Sprintf("%ds", int(s.Duration.Seconds())), "--host", t.url, "--api", c.api,
		"--csv", s.Prefix, "--only-summary", "--stop-timeout", "5", "--exit-code-on-error", "0"}
	logf, err := os.Create(s.Prefix + ".log")
	if err != nil {
		return err
	}
	defer logf.Close()
	start := func(args ...string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, c.locust, args...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		return cmd, cmd.Start()
	}
	if c.workers <= 0 {
		cmd, err := start(append(common, headless...)...)
		if err != nil {
			return fmt.Errorf("start locust: %w", err)
		}
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("locust: %w (see %s.log)", err, s.Prefix)
		}
		return scanLog(s)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	master, err := start(append(append(common, headless...), "--master", "--master-bind-host", "127.0.0.1",
		"--master-bind-port", strconv.Itoa(port), "--expect-workers", strconv.Itoa(c.workers))...)
	if err != nil {
		return fmt.Errorf("start locust master: %w", err)
	}
	var workers []*exec.Cmd
	for range c.workers {
		w, err := start(append(common, "--worker", "--master-host", "127.0.0.1", "--master-port", strconv.Itoa(port))...)
		if err != nil {
			cancel()
			master.Wait()
			return fmt.Errorf("start locust worker: %w", err)
		}
		workers = append(workers, w)
	}
	merr := master.Wait()
	// Workers quit when the master does; give them a moment, then stop them.
	for _, w := range workers {
		done := make(chan struct{})
		go func() { w.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-w.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	if merr != nil {
		return fmt.Errorf("locust master: %w (see %s.log)", merr, s.Prefix)
	}
	return scanLog(s)
}

func scanLog(s *step) error {
	b, err := os.ReadFile(s.Prefix + ".log")
	if err != nil {
		return err
	}
	s.CPUWarn = strings.Contains(string(b), "CPU usage above")
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func collect(s *step) error {
	var err error
	if s.Stats, err = locustcsv.ReadStats(s.Prefix); err != nil {
		return err
	}
	if s.History, err = locustcsv.ReadHistory(s.Prefix); err != nil {
		return err
	}
	s.Failures, err = locustcsv.ReadFailures(s.Prefix)
	return err
}

func writeReport(dir string, c *config, steps []*step, started time.Time) (string, error) {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format+"\n", a...) }
	p("# Car Build Locust experiments %s", started.UTC().Format(time.RFC3339))
	p("")
	p("The earlier system's matrix (2,500 / 5,000 / 7,500 users, spawn 100/s, 3 min per step, per overlay) scaled by %g: users and step length multiplied by it.", c.scale)
	p("")
	p("- Locust: `%s`, locustfile `%s`, API surface `%s`, client `%s`, workers %d (0 = one process)", c.locust, c.locustfile, c.api, c.client, c.workers)
	p("- Think time 1-3 s; task weights browse 1, parts 3, quote 2, order 1; every response's content is checked")
	p("- Spawn rate %g users/s; the load generator runs on the same machine as the system under test", c.spawnRate)
	for _, t := range c.targets {
		p("- overlay `%s`: %s", t.name, t.url)
	}
	p("")
	p("For comparison, the earlier system (FastAPI gateway, Node.js gRPC services) on its 3-worker Kind cluster saturated near")
	p("1,000 req/s, failed 1-2 %% of requests at 5,000 users and reached P99 latencies of 15-64 s (the earlier system's report).")
	p("")
	p("| overlay | users | length | requests | failures | failure %% | req/s | P50 ms | P95 ms | P99 ms | max ms | note |")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range steps {
		if s.Stats == nil {
			p("| %s | %d | %s | – | – | – | – | – | – | – | – | %s |", s.Overlay, s.Users, s.Duration, s.Err)
			continue
		}
		t := s.Stats.Total
		note := s.Err
		if s.CPUWarn {
			note = strings.TrimSpace(note + " Locust warned CPU > 90 %: the generator, not the system, may be the limit")
		}
		p("| %s | %d | %s | %d | %d | %.2f | %.1f | %.0f | %.0f | %.0f | %.0f | %s |", s.Overlay, s.Users, s.Duration, t.Requests, t.Failures,
			pct(t.Failures, t.Requests), t.RPS, t.Pct["50%"], t.Pct["95%"], t.Pct["99%"], t.Max, note)
	}
	for _, s := range steps {
		if s.Stats == nil {
			continue
		}
		p("")
		p("### %s, %d users: per endpoint", s.Overlay, s.Users)
		p("")
		p("| endpoint | requests | failures | req/s | P50 ms | P95 ms | P99 ms | max ms |")
		p("|---|---|---|---|---|---|---|---|")
		for _, r := range s.Stats.Endpoints {
			p("| %s %s | %d | %d | %.1f | %.0f | %.0f | %.0f | %.0f |", r.Method, r.Name, r.Requests, r.Failures, r.RPS, r.Pct["50%"], r.Pct["95%"], r.Pct["99%"], r.Max)
		}
		if len(s.Failures) > 0 {
			p("")
			p("Failures:")
			p("")
			sort.Slice(s.Failures, func(i, j int) bool { return s.Failures[i].Occurrences > s.Failures[j].Occurrences })
			for i, f := range s.Failures {
				if i == 10 {
					p("- … %d more kinds", len(s.Failures)-10)
					break
				}
				p("- %d × %s %s: `%s`", f.Occurrences, f.Method, f.Name, f.Error)
			}
		}
	}
	plots, err := experimentPlots(dir, steps)
	if err != nil {
		return "", err
	}
	p("")
	p("## Plots")
	for _, f := range plots {
		p("")
		p("![%s](%s)", strings.TrimSuffix(f, ".png"), f)
	}
	p("")
	p("Raw data: `*_stats.csv`, `*_stats_history.csv`, `*_failures.csv` and `*.log` per step in this folder.")
	md := filepath.Join(dir, "report.md")
	return md, os.WriteFile(md, []byte(w.String()), 0o644)
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func experimentPlots(dir string, steps []*step) ([]string, error) {
	byOverlay := map[string][]*step{}
	var order []string
	for _, s := range steps {
		if s.Stats == nil {
			continue
		}
		if byOverlay[s.Overlay] == nil {
			order = append(order, s.Overlay)
		}
		byOverlay[s.Overlay] = append(byOverlay[s.Overlay], s)
	}
	if len(order) == 0 {
		return nil, nil
	}
	var tp, fails []report.Line
	lat := report.Chart{Title: "Latency percentiles per step", XLabel: "users", YLabel: "ms (log)", LogY: true}
	for _, o := range order {
		var x, rps, f, p50, p95, p99 []float64
		for _, s := range byOverlay[o] {
			t := s.Stats.Total
			x = append(x, float64(s.Users))
			rps = append(rps, t.RPS)
			f = append(f, pct(t.Failures, t.Requests))
			p50 = append(p50, t.Pct["50%"])
			p95 = append(p95, t.Pct["95%"])
			p99 = append(p99, t.Pct["99%"])
		}
		tp = append(tp, report.Line{Name: o, X: x, Y: rps})
		fails = append(fails, report.Line{Name: o, X: x, Y: f})
		lat.Lines = append(lat.Lines, report.Line{Name: o + " P50", X: x, Y: p50}, report.Line{Name: o + " P95", X: x, Y: p95}, report.Line{Name: o + " P99", X: x, Y: p99})
	}
	charts := []struct {
		c    report.Chart
		file string
	}{
		{report.Chart{Title: "Throughput per step", XLabel: "users", YLabel: "requests/s", Lines: tp}, "throughput.png"},
		{lat, "latency.png"},
		{report.Chart{Title: "Failures per step", XLabel: "users", YLabel: "failed requests (%)", Lines: fails}, "failures.png"},
	}
	// Throughput over time, one line per step.
	var timeline []report.Line
	for _, s := range steps {
		if len(s.History) == 0 {
			continue
		}
		var x, y []float64
		t0 := s.History[0].Unix
		for _, h := range s.History {
			x = append(x, float64(h.Unix-t0))
			y = append(y, h.RPS)
		}
		timeline = append(timeline, report.Line{Name: fmt.Sprintf("%s %d users", s.Overlay, s.Users), X: x, Y: y})
	}
	if len(timeline) > 0 {
		charts = append(charts, struct {
			c    report.Chart
			file string
		}{report.Chart{Title: "Throughput over time", XLabel: "seconds since the step started", YLabel: "requests/s", Lines: timeline}, "timeline.png"})
	}
	var files []string
	for _, ch := range charts {
		if err := ch.c.Save(filepath.Join(dir, ch.file)); err != nil {
			return nil, err
		}
		files = append(files, ch.file)
	}
	return files, nil
}
