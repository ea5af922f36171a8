package pgboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// dirPrefix names private server directories, so stale ones can be found.
const dirPrefix = "carbuild-pg-"

// ownerFile in a private server's directory holds the pid of the process
// that booted it; a directory whose owner is gone is stale.
const ownerFile = "owner.pid"

// private is a cluster this process booted.
type private struct {
	dir    string // temp dir holding data/, the socket and server.log
	pgCtl  string
	cred   *syscall.Credential // nil unless running as root
	logger *slog.Logger
	once   sync.Once
}

// startPrivate boots a throw-away cluster.
func startPrivate(ctx context.Context, logger *slog.Logger, base string, tls *ServerTLS, durable bool) (*Server, error) {
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	if base == "" {
		base = defaultBase()
	}
	sweepStale(base, bin, cred, logger)

	dir, err := os.MkdirTemp(base, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	p := &private{dir: dir, pgCtl: filepath.Join(bin, "pg_ctl"), cred: cred, logger: logger}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("write owner file: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("give %s to user postgres: %w", dir, err)
		}
	}

	start := time.Now()
	data := filepath.Join(dir, "data")
	initdb := []string{"-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"}
	// C.UTF-8 matches what Debian's packaged clusters use; fall back to C
	// where that locale does not exist.
	if _, err := p.run(ctx, filepath.Join(bin, "initdb"), append(initdb, "--locale=C.UTF-8")...); err != nil {
		if err2 := os.RemoveAll(data); err2 != nil {
			return nil, fmt.Errorf("clean up after initdb: %w", err2)
		}
		if _, err2 := p.run(ctx, filepath.Join(bin, "initdb"), append(initdb, "--locale=C")...); err2 != nil {
			if cred != nil {
				return nil, fmt.Errorf("%w (running initdb as user postgres: can it reach %s?)", err, dir)
			}
			return nil, err
		}
	}

	settings := ""
	if tls != nil {
		if err := p.requireTLS(data, tls); err != nil {
			return nil, err
		}
		settings = " -c ssl=on"
	}

	// A free port can be taken by someone else before the server binds it;
	// try a few.
	var port int
	for attempt := 0; ; attempt++ {
		port, err = freePort()
		if err != nil {
			return nil, err
		}
		durability := "-F -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		if durable {
			durability = "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 %s -c max_connections=200", port, dir, durability) + settings
		_, err = p.run(ctx, p.pgCtl, "-D", data, "-l", filepath.Join(dir, "server.log"),
			"-w", "-t", "30", "-o", opts, "start")
		if err == nil {
			break
		}
		if attempt == 2 || ctx.Err() != nil {
			return nil, fmt.Errorf("%w; server log: %s", err, tail(filepath.Join(dir, "server.log")))
		}
	}
	ok = true
	logger.InfoContext(ctx, "started private PostgreSQL", "dir", dir, "port", port,
		"bin", bin, "took", time.Since(start).Round(time.Millisecond))
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if tls != nil {
		url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=verify-full&sslrootcert=%s", port, tls.CAFile)
	}
	return &Server{
		URL:     url,
		Source:  "private server in " + dir,
		private: p,
	}, nil
}

// requireTLS gives the cluster in data the certificate of t (as
// server.crt and server.key, owned by the server's user: PostgreSQL refuses
// a key others can read) and a pg_hba.conf that accepts TCP connections
// only over TLS; the socket in the server's directory stays open for the
// server's own tools.
func (p *private) requireTLS(data string, t *ServerTLS) error {
	hba := "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"
	for _, f := range []struct {
		from, to string
		mode     os.FileMode
	}{{t.CertFile, "server.crt", 0o644}, {t.KeyFile, "server.key", 0o600}, {"", "pg_hba.conf", 0o600}} {
		b := []byte(hba)
		if f.from != "" {
			var err error
			if b, err = os.ReadFile(f.from); err != nil {
				return fmt.Errorf("private server TLS: %w", err)
			}
		}
		to := filepath.Join(data, f.to)
		if err := os.WriteFile(to, b, f.mode); err != nil {
			return fmt.Errorf("private server TLS: %w", err)
		}
		if p.cred != nil {
			if err := os.Chown(to, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
				return fmt.Errorf("private server TLS: %w", err)
			}
		}
	}
	return nil
}

// close stops the server (if it runs) and removes its directory.
func (p *private) close() {
	p.once.Do(func() {
		data := filepath.Join(p.dir, "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			// Immediate: the data is thrown away, no need for a clean shutdown.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := p.run(ctx, p.pgCtl, "-D", data, "-m", "immediate", "-w", "stop"); err != nil {
				p.logger.Error("stop private PostgreSQL", "dir", p.dir, "err", err)
			}
		}
		if err := os.RemoveAll(p.dir); err != nil {
			p.logger.Error("remove private PostgreSQL directory", "dir", p.dir, "err", err)
			return
		}
		p.logger.Info("stopped private PostgreSQL", "dir", p.dir)
	})
}

// run runs a server binary, as user postgres when we are root, and returns
// its output; the error includes the output.
func (p *private) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return runAs(ctx, p.cred, p.dir, name, args...)
}

func runAs(ctx context.Context, cred *syscall.Credential, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir // the postgres user may not be able to enter our cwd
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start leaves the server running with our stdout inherited
	// unless told otherwise; we pass -l, and WaitDelay bounds the wait for
	// any pipe held by the daemon.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err,
			strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

// findBinDir returns the newest directory holding both initdb and pg_ctl:
// the one on PATH first, then /usr/lib/postgresql/<version>/bin.
func findBinDir() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(r))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versions, func(a, b string) int { // newest first
		return versionOf(b) - versionOf(a)
	})
	dirs = append(dirs, versions...)
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl %w in PATH or /usr/lib/postgresql/*/bin", errNotFound)
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// credential returns the postgres user's credential when running as root
// (initdb refuses to run as root), nil otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, initdb must run as another user, "+
			"but user postgres does not exist (%w); create it or run as a normal user", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// defaultBase prefers tmpfs: initdb there takes about half the time.
func defaultBase() string {
	const shm = "/dev/shm"
	if st, err := os.Stat(shm); err == nil && st.IsDir() {
		if f, err := os.CreateTemp(shm, ".pgboot-probe-"); err == nil {
			name := f.Name()
			_ = f.Close()
			_ = os.Remove(name)
			return shm
		}
	}
	return os.TempDir()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// sweepStale stops and removes private servers whose owning process is
// gone (a test binary killed before it could clean up).
func sweepStale(base, bin string, cred *syscall.Credential, logger *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or still being created
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		p := &private{dir: dir, pgCtl: filepath.Join(bin, "pg_ctl"), cred: cred, logger: logger}
		logger.Info("removing stale private PostgreSQL", "dir", dir, "owner_pid", pid)
		p.close()
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
