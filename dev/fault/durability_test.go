package fault

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carbuild/carbuild/dev/stack"
	"github.com/carbuild/carbuild/migrations/pgboot"
)

// TestDatabaseCrash kills PostgreSQL (SIGKILL to the postmaster and every
// server process: no shutdown, no checkpoint) while orders are placed
// concurrently, so that pricing groups them into shared transactions, then
// starts it again, which replays the WAL (crash recovery). The server runs
// as production does: fsync, synchronous_commit and full_page_writes on.
// Every order a client was told about (2xx) survives, with the id it was
// given; retrying each failed order with its key yields exactly one stored
// order per key. A confirmed order is one whose commit reached the WAL on
// disk: with synchronous_commit off, the orders confirmed in the last
// moments before the kill would be missing.
//
// What the kill does not test: a power loss, where the kernel's page cache
// goes too (the private server lives on /dev/shm when it can). That is what
// fsync on is for, which the test checks is set.
func TestDatabaseCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := pgboot.FindWith(ctx, nil, pgboot.FindOptions{SkipEnv: true, SkipLocal: true, Durable: true})
	if err != nil {
		t.Fatalf("boot a private PostgreSQL: %v", err)
	}
	t.Cleanup(srv.Close) // after the stack (cleanups run last-in first-out)
	pg := privateServer(t, srv)
	dsn, err := pgboot.CreateDatabase(ctx, srv.URL, "carbuild_crash")
	if err != nil {
		t.Fatal(err)
	}
	before := connect(t, dsn)
	for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		var v string
		if err := before.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "on" {
			t.Fatalf("%s is %s on the durable server; want on", name, v)
		}
	}
	before.Close(ctx)
	s := startStack(t, stack.Config{DatabaseURL: dsn})

	// Many orders in flight at once: pricing's group commit batches them,
	// so the crash hits batches, not only single orders.
	l := startLoad(loadConfig{Rate: 400, Workers: 64, Targets: fixed(s.GatewayURL), Next: func(int) call { return orderCall(randomKey(12)) }})
	stopped := false
	defer func() {
		if !stopped {
			l.stop()
		}
	}()
	l.waitResults(t, "orders before the crash", 300, okAfter(time.Time{}, ""))
	killAt := pg.crash(t)
	l.waitResults(t, "orders failing after the crash", 20, func(r result) bool { return !r.ok() && r.start.After(killAt) })
	startAt := time.Now()
	pg.restart(t)
	l.waitResults(t, "orders after the recovery", 200, okAfter(startAt, ""))
	rs := l.stop()
	stopped = true

	serverLog, err := os.ReadFile(filepath.Join(pg.dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(serverLog), "automatic recovery in progress") {
		t.Errorf("the restarted server did not run crash recovery; server log:\n%s", lastLines(string(serverLog), 20))
	}

	acked := orderIDs(t, rs)
	lastMoment := 0 // confirmed in the 200 ms before the kill: the orders an asynchronous commit would lose
	for _, r := range rs {
		if r.kind == "order" && r.ok() && r.end.Before(killAt) && r.end.After(killAt.Add(-200*time.Millisecond)) {
			lastMoment++
		}
	}
	if lastMoment == 0 {
		t.Errorf("no order was confirmed in the 200 ms before the kill: the crash did not hit a busy server")
	}
	confirmed := len(acked)

	// Retry every failed order with its key: each now answers 200 (a new
	// order, or the one whose commit the crash hid from its client).
	retried := retryFailedOrders(t, s.GatewayURL, rs, acked)
	stored := storedOncePerKey(t, connect(t, dsn), acked)
	t.Logf("database crash: %s; %d orders confirmed (%d in the 200 ms before the kill), %d failed and were retried with their key, %d keys, %d stored; down %s",
		summarize(rs), confirmed, lastMoment, retried, len(acked), stored, startAt.Sub(killAt).Round(time.Millisecond))
}

// crash kills the server's postmaster and every one of its processes with
// SIGKILL and returns when all are gone.
func (p *pgServer) crash(t *testing.T) time.Time {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("postmaster.pid: %q", first)
	}
	pids := append([]int{postmaster}, children(postmaster)...)
	at := time.Now()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
	if !waitFor(30*time.Second, func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("PostgreSQL processes %v still alive 30 s after SIGKILL", pids)
	}
	return at
}

// restart starts the server again after crash, which makes it replay its
// WAL, and logs the server's log if it does not start.
func (p *pgServer) restart(t *testing.T) {
	t.Helper()
	logFile := filepath.Join(p.dir, "server.log")
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("server log:\n%s", lastLines(string(b), 20))
		}
	}()
	// The killed postmaster may linger as a zombie (this machine's pid 1
	// reaps orphans late), and PostgreSQL takes a lock file whose pid
	// answers kill(pid, 0) for a running server. Every server process is
	// gone (crash waited for it), so the lock files (the data directory's
	// and the socket's) are stale: remove them, as an operator would after
	// a crash.
	sockets, err := filepath.Glob(filepath.Join(p.dir, ".s.PGSQL.*.lock"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(sockets, filepath.Join(p.data, "postmaster.pid")) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	p.ctl(t, "-w", "-t", "60", "-o", p.opts, "-l", logFile, "start")
}

// children returns the pids whose parent is pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := procStat(child); ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

// alive reports whether pid runs (a zombie waiting to be reaped does not).
func alive(pid int) bool {
	_, state := procStat(pid)
	return state != "" && state != "Z" && state != "X"
}

// procStat returns the parent pid and state of pid from /proc/<pid>/stat
// (0 and "" when it is gone).
func procStat(pid int) (ppid int, state string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, ""
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, ""
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0]
}
