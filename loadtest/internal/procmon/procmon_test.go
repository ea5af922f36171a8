package procmon

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPIDByPortFindsThisProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := PIDByPort(l.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatalf("PIDByPort: %v", err)
	}
	if got != os.Getpid() {
		t.Errorf("PIDByPort = %d, want %d", got, os.Getpid())
	}
}

func TestPIDByPortNothingListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if pid, err := PIDByPort(port); err == nil {
		t.Errorf("PIDByPort(%d) = %d, want an error", port, pid)
	}
}

func TestReadSelf(t *testing.T) {
	m, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("Read(self) = %+v, want 0 < RSS <= HWM", m)
	}
}

func TestUsageSeesBusyLoop(t *testing.T) {
	s := NewSampler(map[string]int{"self": os.Getpid()})
	c0, err := CPUSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	s.sample()
	// Burn 200 ms of CPU (however long a busy machine takes to give it, up to 10 s).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if c, _ := CPUSeconds(os.Getpid()); c-c0 >= 0.2 {
			break
		}
	}
	s.sample()
	elapsed := time.Since(from).Seconds()
	u := s.Usage(from, time.Now())
	want := 100 * 0.2 / elapsed // at least this much
	if got := u.Process["self"]; got < want*0.8 || got > 250 {
		t.Errorf("CPU of a busy loop = %.0f %% over %.2f s, want at least %.0f %% (0.2 s of CPU)", got, elapsed, want)
	}
	if u.Machine <= 0 || u.Machine > 100 {
		t.Errorf("machine busy = %.0f %%, want (0, 100]", u.Machine)
	}
}

func TestParseCPULine(t *testing.T) {
	for _, c := range []struct {
		name, line        string
		wantBusy, wantAll uint64
	}{
		// user nice system idle iowait irq softirq steal
		{"old kernel, 8 fields", "10 1 5 100 4 2 3 0", 21, 125},
		// ... guest guest_nice, already counted in user and nice
		{"guest time counted once", "10 1 5 100 4 2 3 0 6 1", 21, 125},
		{"idle", "0 0 0 50 0 0 0 0 0 0", 0, 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := parseCPULine(strings.Fields(c.line))
			if got.busy != c.wantBusy || got.total != c.wantAll {
				t.Errorf("parseCPULine(%q) = busy %d total %d, want %d %d", c.line, got.busy, got.total, c.wantBusy, c.wantAll)
			}
		})
	}
}

func TestMachineCPUListsEachCPU(t *testing.T) {
	all, each := machineCPU()
	// NumCPU counts the CPUs this process may run on, /proc/stat every CPU
	// of the machine (more in a container or under taskset).
	if len(each) < runtime.NumCPU() {
		t.Fatalf("machineCPU: %d CPUs, want at least %d (runtime.NumCPU)", len(each), runtime.NumCPU())
	}
	var sum uint64
	for _, c := range each {
		sum += c.total
	}
	// /proc/stat's first line is the sum of the others, read at one instant.
	if all.total == 0 || sum < all.total*9/10 || sum > all.total*11/10 {
		t.Errorf("machineCPU: all CPUs %d jiffies, each summed %d", all.total, sum)
	}
}

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		name, line string
		want       procStat
		bad        bool
	}{
		{name: "postgres backend",
			line: "4242 (postgres) S 4100 4100 4100 0 -1 4194560 1200 0 0 0 731 204 12 3 20 0 1 0 5000 230000000 5000 18446744073709551615",
			want: procStat{ppid: 4100, utime: 731, stime: 204, cutime: 12, cstime: 3}},
		{name: "a command name with spaces and parentheses",
			line: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 7 8 20 0 1 0 1 1 1",
			want: procStat{ppid: 1, utime: 5, stime: 6, cutime: 7, cstime: 8}},
		{name: "no closing parenthesis", line: "7 (oops S 1 2 3", bad: true},
		{name: "too few fields", line: "7 (x) S 1 7 7 0 -1 0 0 0 0 0 5 6", bad: true},
		{name: "negative child time", line: "7 (x) S 1 7 7 0 -1 0 0 0 0 0 5 6 -7 8 20", bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseStat(c.line)
			if c.bad {
				if err == nil {
					t.Errorf("parseStat(%q) = %+v, want an error", c.line, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("parseStat(%q) = %+v, %v; want %+v", c.line, got, err, c.want)
			}
		})
	}
}

// burnEnv makes the test binary a child that burns 0.3 s of CPU, says
// "ready" and waits for its standard input to close.
const burnEnv = "PROCMON_TEST_BURN"

func TestMain(m *testing.M) {
	if os.Getenv(burnEnv) != "" {
		for c0, _ := CPUSeconds(os.Getpid()); ; {
			if c, _ := CPUSeconds(os.Getpid()); c-c0 >= 0.3 {
				break
			}
		}
		os.Stdout.WriteString("ready\n")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestTreeCPUCountsChildrenLiveAndEnded(t *testing.T) {
	self := os.Getpid()
	tree0, err := TreeCPUSeconds(self)
	if err != nil {
		t.Fatal(err)
	}
	own0, _ := CPUSeconds(self)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), burnEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	// The child has used 0.3 s and still runs: counted as a live child.
	live, err := TreeCPUSeconds(self)
	if err != nil {
		t.Fatal(err)
	}
	child := cmd.Process.Pid
	if kids, err := Children(self); err != nil || !slices.Contains(kids, child) {
		t.Errorf("Children(self) = %v, %v; want the running child %d among them", kids, err, child)
	}
	if parent, err := Parent(child); err != nil || parent != self {
		t.Errorf("Parent(child) = %d, %v; want %d", parent, err, self)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// Reaped: its time is now in this process's cutime and cstime.
	ended, err := TreeCPUSeconds(self)
	if err != nil {
		t.Fatal(err)
	}
	own, _ := CPUSeconds(self)
	// 0.3 s, less two clock ticks: this process's own time and the tree's
	// are read at different instants.
	const childCPU = 0.275
	if got := live - tree0 - (own - own0); got < childCPU {
		t.Errorf("while the child ran, the tree grew by %.2f s beyond this process's own time, want ≥ %.2f", got, childCPU)
	}
	if got := ended - tree0 - (own - own0); got < childCPU {
		t.Errorf("after the child ended, the tree grew by %.2f s beyond this process's own time, want ≥ %.2f", got, childCPU)
	}
	if ended < live {
		t.Errorf("the tree went back from %.2f to %.2f s when its child was reaped", live, ended)
	}
}

func TestSamplerWatchTree(t *testing.T) {
	s := NewSampler(map[string]int{})
	s.WatchTree("tree", os.Getpid())
	from := time.Now()
	s.sample()
	c0, _ := CPUSeconds(os.Getpid())
	for c := c0; c-c0 < 0.1; c, _ = CPUSeconds(os.Getpid()) {
	}
	s.sample()
	if u := s.Usage(from, time.Now()); u.Process["tree"] <= 0 {
		t.Errorf("Usage of a watched tree = %+v, want the tree's CPU in Process", u)
	}
}
