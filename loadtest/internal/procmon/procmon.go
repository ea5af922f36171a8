// Package procmon finds service processes by their listening port and samples
// their memory (VmRSS, VmHWM from /proc/PID/status) while the load runs.
package procmon

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PIDByPort returns the process listening on TCP port (IPv4 or IPv6), found
// through /proc/net/tcp{,6} and the socket inodes in /proc/*/fd.
func PIDByPort(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A = LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			p, err := strconv.ParseInt(fs[1][i+1:], 16, 32)
			if err == nil && int(p) == port {
				inodes[fs[9]] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		l, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] {
			pid, err := strconv.Atoi(strings.Split(fd, "/")[2])
			if err == nil {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("port %d: listening socket found but no process owns it (not root?)", port)
}

// Memory is a process's resident set now and its peak, in bytes.
type Memory struct {
	RSS int64 `json:"rss_bytes"`
	HWM int64 `json:"hwm_bytes"`
}

// Read reads VmRSS and VmHWM of pid.
func Read(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v) // "12345 kB"
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("%s: %w", k, err)
		}
		if k == "VmRSS" {
			m.RSS = n * 1024
		} else {
			m.HWM = n * 1024
		}
	}
	return m, sc.Err()
}

// Sample is the memory and CPU time of every watched process at one instant,
// and the machine's CPU counters.
type Sample struct {
	At  time.Time          `json:"at"`
	Mem map[string]Memory  `json:"mem"`
	CPU map[string]float64 `json:"cpu_seconds"` // user+system since the process started
	// Busy and Total are the machine's CPU jiffies (all CPUs) from /proc/stat;
	// PerCPU the same for each CPU, in /proc/stat's order (cpu0, cpu1...).
	Busy, Total uint64     `json:"-"`
	PerCPU      []cpuTicks `json:"-"`
}

// cpuTicks is one line of /proc/stat: busy and total jiffies.
type cpuTicks struct{ busy, total uint64 }

// CPUSeconds reads the user+system CPU time of pid from /proc/PID/stat.
func CPUSeconds(pid int) (float64, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return float64(st.utime+st.stime) / clockTicks, nil
}

// TreeCPUSeconds is the CPU time of pid and of its children, live or
// ended: its own user+system time, what its reaped children used (cutime,
// cstime), and each live child's time with its own reaped children's. A
// server that forks a process per connection, like PostgreSQL's
// postmaster, is measured whole this way, and a backend that exits between
// two readings takes nothing with it once it is reaped. (Grandchildren that
// still run are not counted.)
func TreeCPUSeconds(pid int) (float64, error) {
	root, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	ticks := root.utime + root.stime + root.cutime + root.cstime
	err = eachChild(pid, func(_ int, st procStat) {
		ticks += st.utime + st.stime + st.cutime + st.cstime
	})
	return float64(ticks) / clockTicks, err
}

// Parent returns the parent of pid, from /proc/PID/stat.
func Parent(pid int) (int, error) {
	st, err := readStat(pid)
	return st.ppid, err
}

// Children returns the running processes whose parent is pid.
func Children(pid int) ([]int, error) {
	var pids []int
	err := eachChild(pid, func(child int, _ procStat) { pids = append(pids, child) })
	return pids, err
}

// eachChild calls f with every running child of pid and its stat.
func eachChild(pid int, f func(child int, st procStat)) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		st, err := readStat(child)
		if err != nil || st.ppid != pid {
			continue // not a child, or it ended meanwhile
		}
		f(child, st)
	}
	return nil
}

// procStat is what procmon reads of /proc/PID/stat.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime uint64 // clock ticks
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	st, err := parseStat(string(b))
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// parseStat reads a /proc/PID/stat line.
func parseStat(s string) (procStat, error) {
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after the last ")" are fixed: state (3), ppid (4)... utime
	// (14), stime (15), cutime (16), cstime (17).
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("unexpected format")
	}
	fs := strings.Fields(s[i+1:])
	if len(fs) < 15 {
		return procStat{}, fmt.Errorf("too few fields")
	}
	var st procStat
	var err error
	if st.ppid, err = strconv.Atoi(fs[1]); err != nil {
		return procStat{}, fmt.Errorf("bad ppid")
	}
	for j, dst := range []*uint64{&st.utime, &st.stime, &st.cutime, &st.cstime} {
		// cutime and cstime are signed in the kernel's format, never
		// negative in practice.
		v, err := strconv.ParseInt(fs[11+j], 10, 64)
		if err != nil || v < 0 {
			return procStat{}, fmt.Errorf("bad CPU time in field %d", 14+j)
		}
		*dst = uint64(v)
	}
	return st, nil
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports here.
const clockTicks = 100

// machineCPU returns busy and total jiffies of all CPUs, then of each.
func machineCPU() (all cpuTicks, each []cpuTicks) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return all, nil
	}
	for line := range strings.Lines(string(b)) {
		fs := strings.Fields(line)
		if len(fs) < 5 || !strings.HasPrefix(fs[0], "cpu") {
			break // the cpu lines come first
		}
		t := parseCPULine(fs[1:])
		if fs[0] == "cpu" {
			all = t
		} else {
			each = append(each, t)
		}
	}
	return all, each
}

// parseCPULine sums the jiffies of one /proc/stat cpu line (after its name).
func parseCPULine(fs []string) (t cpuTicks) {
	for i, f := range fs {
		v, _ := strconv.ParseUint(f, 10, 64)
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	// guest and guest_nice are already counted in user and nice
	if len(fs) > 9 {
		g1, _ := strconv.ParseUint(fs[8], 10, 64)
		g2, _ := strconv.ParseUint(fs[9], 10, 64)
		t.busy -= g1 + g2
		t.total -= g1 + g2
	}
	return t
}

// Sampler samples the memory of named processes at an interval.
type Sampler struct {
	pids    map[string]int
	mu      sync.Mutex
	trees   map[string]int // name → a process measured with its children (CPU only)
	samples []Sample
}

// NewSampler watches pids (name → pid).
func NewSampler(pids map[string]int) *Sampler {
	return &Sampler{pids: pids}
}

// Run samples every interval until ctx ends.
func (s *Sampler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// WatchTree also samples the CPU of pid and its children as name
// (TreeCPUSeconds; no memory): a server with a process per connection, such
// as PostgreSQL's postmaster, whose CPU would otherwise count as other
// processes'.
func (s *Sampler) WatchTree(name string, pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.trees == nil {
		s.trees = map[string]int{}
	}
	s.trees[name] = pid
}

func (s *Sampler) sample() {
	smp := Sample{At: time.Now(), Mem: map[string]Memory{}, CPU: map[string]float64{}}
	for name, pid := range s.pids {
		if m, err := Read(pid); err == nil {
			smp.Mem[name] = m
		}
		if c, err := CPUSeconds(pid); err == nil {
			smp.CPU[name] = c
		}
	}
	s.mu.Lock()
	trees := maps.Clone(s.trees)
	s.mu.Unlock()
	for name, pid := range trees {
		if c, err := TreeCPUSeconds(pid); err == nil {
			smp.CPU[name] = c
		}
	}
	var all cpuTicks
	all, smp.PerCPU = machineCPU()
	smp.Busy, smp.Total = all.busy, all.total
	s.mu.Lock()
	s.samples = append(s.samples, smp)
	s.mu.Unlock()
}

// Peak returns, per process, the largest VmRSS sampled in [from, to] and the
// last VmHWM seen (the peak since the process started).
func (s *Sampler) Peak(from, to time.Time) map[string]Memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Memory{}
	for _, smp := range s.samples {
		if smp.At.Before(from) || smp.At.After(to) {
			continue
		}
		for name, m := range smp.Mem {
			p := out[name]
			p.RSS = max(p.RSS, m.RSS)
			p.HWM = max(p.HWM, m.HWM)
			out[name] = p
		}
	}
	return out
}

// Usage is CPU use over a window: per process in percent of one CPU, and the
// whole machine's busy share in percent of all CPUs.
type Usage struct {
	Process map[string]float64 `json:"process_cpu_percent"`
	Machine float64            `json:"machine_busy_percent"`
	// Others is the CPU the rest of the machine used meanwhile, in percent of
	// one CPU: the machine's busy time minus the watched processes'.
	Others float64 `json:"others_cpu_percent"`
	// CPUs is each CPU's busy share in percent (cpu0 first): with the stack
	// pinned to one CPU, it tells whether that CPU was the limit.
	CPUs []float64 `json:"cpu_busy_percent,omitempty"`
}

// Usage returns the CPU use between the first and last samples in [from, to].
func (s *Sampler) Usage(from, to time.Time) Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first, last *Sample
	for i := range s.samples {
		smp := &s.samples[i]
		if smp.At.Before(from) || smp.At.After(to) {
			continue
		}
		if first == nil {
			first = smp
		}
		last = smp
	}
	u := Usage{Process: map[string]float64{}}
	if first == nil || last == first {
		return u
	}
	secs := last.At.Sub(first.At).Seconds()
	for name, c := range last.CPU {
		if c0, ok := first.CPU[name]; ok && secs > 0 {
			// A tree may drop for a moment: a child that ended but is not
			// reaped yet counts in neither its own time nor its parent's.
			u.Process[name] = max(0, 100*(c-c0)/secs)
		}
	}
	if dt := last.Total - first.Total; dt > 0 {
		u.Machine = 100 * float64(last.Busy-first.Busy) / float64(dt)
		ours := 0.0
		for _, c := range u.Process {
			ours += c
		}
		u.Others = max(0, u.Machine*float64(runtime.NumCPU())-ours)
	}
	if len(first.PerCPU) == len(last.PerCPU) {
		for i, t := range last.PerCPU {
			t0 := first.PerCPU[i]
			if dt := t.total - t0.total; dt > 0 {
				u.CPUs = append(u.CPUs, 100*float64(t.busy-t0.busy)/float64(dt))
			}
		}
	}
	return u
}

// Samples returns a copy of every sample.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

// PIDs returns the watched processes.
func (s *Sampler) PIDs() map[string]int { return s.pids }
