package procmon

import (
	"net"
	"os"
	"testing"
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
