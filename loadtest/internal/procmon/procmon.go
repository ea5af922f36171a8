// Package procmon finds service processes by their listening port and samples
// their memory (VmRSS, VmHWM from /proc/PID/status) while the load runs.
package procmon

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// Sample is the memory of every watched process at one instant.
type Sample struct {
	At  time.Time         `json:"at"`
	Mem map[string]Memory `json:"mem"`
}

// Sampler samples the memory of named processes at an interval.
type Sampler struct {
	pids    map[string]int
	mu      sync.Mutex
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

func (s *Sampler) sample() {
	smp := Sample{At: time.Now(), Mem: map[string]Memory{}}
	for name, pid := range s.pids {
		if m, err := Read(pid); err == nil {
			smp.Mem[name] = m
		}
	}
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

// Samples returns a copy of every sample.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

// PIDs returns the watched processes.
func (s *Sampler) PIDs() map[string]int { return s.pids }
