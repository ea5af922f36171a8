package procmon

import (
	"net"
	"os"
	"runtime"
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
