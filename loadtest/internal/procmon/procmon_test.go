package procmon

import (
	"net"
	"os"
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
