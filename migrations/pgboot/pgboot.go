// Package pgboot finds a PostgreSQL server to use, or boots a private,
// throw-away one, for tests and for the local run command.
//
// Find tries, in order:
//
//  1. DATABASE_URL, when set (it must answer, or Find fails: an explicit
//     choice is never silently replaced by another server);
//  2. a local server at postgres://postgres@127.0.0.1:5432/postgres;
//  3. a private cluster made with initdb and started with pg_ctl in a
//     temporary directory (on /dev/shm when available), listening on a free
//     port of 127.0.0.1, with durability switched off for speed.
//
// When none works, the error says what is missing and how to provide it.
package pgboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable Find reads first.
const EnvURL = "DATABASE_URL"

// LocalURL is the local server Find tries when DATABASE_URL is not set.
const LocalURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Timeouts for checking whether a server answers.
const (
	envPingTimeout   = 10 * time.Second
	localPingTimeout = 2 * time.Second
)

// Server is a PostgreSQL server ready to use.
type Server struct {
	// URL is a DSN with rights to create databases (the admin DSN).
	URL string
	// Source says where the server came from, for logs: "DATABASE_URL",
	// "local server at 127.0.0.1:5432" or "private server in /dev/shm/...".
	Source string

	private *private // nil unless this process booted the server
}

// Private reports whether the server is a private cluster this process
// started (and Close stops).
func (s *Server) Private() bool { return s.private != nil }

// Close stops a private server and removes its directory. It is a no-op for
// servers Find did not start, and safe to call more than once.
func (s *Server) Close() {
	if s.private != nil {
		s.private.close()
	}
}

// FindOptions adjusts Find.
type FindOptions struct {
	// SkipEnv ignores DATABASE_URL.
	SkipEnv bool
	// SkipLocal does not try the local server at 127.0.0.1:5432.
	SkipLocal bool
	// SkipPrivate does not boot a private server.
	SkipPrivate bool
	// Dir is where private servers are created; default /dev/shm when it
	// is writable, else os.TempDir().
	Dir string
	// TLS, when set, boots a private server (DATABASE_URL and the local
	// server are not tried) that accepts TCP connections only over TLS
	// (hostssl), with this certificate; its URL asks for sslmode=verify-full.
	TLS *ServerTLS
	// Durable boots the private server with fsync, synchronous_commit and
	// full_page_writes on, as a production server runs, so that a
	// committed transaction survives a crash of the server (the default
	// private server turns them off for speed). It changes only a private
	// server: set SkipEnv and SkipLocal to be sure of getting one.
	Durable bool
}

// ServerTLS is the TLS of a private server: its certificate and key (PEM
// files; the certificate must name 127.0.0.1) and the CA that signed it,
// which clients check it against.
type ServerTLS struct {
	CertFile, KeyFile, CAFile string
}

// Find returns the first PostgreSQL server that works, in the order the
// package documentation gives. logger may be nil.
func Find(ctx context.Context, logger *slog.Logger) (*Server, error) {
	return FindWith(ctx, logger, FindOptions{})
}

// FindWith is Find with options, for example to force a private server.
func FindWith(ctx context.Context, logger *slog.Logger, opts FindOptions) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.TLS != nil {
		opts.SkipEnv, opts.SkipLocal, opts.SkipPrivate = true, true, false
	}
	var tried []string
	if !opts.SkipEnv {
		if dsn := os.Getenv(EnvURL); dsn != "" {
			if err := ping(ctx, dsn, envPingTimeout); err != nil {
				return nil, fmt.Errorf("%s is set (%s) but the server does not answer: %w; "+
					"fix it or unset it to use a local or private server", EnvURL, Redact(dsn), err)
			}
			s := &Server{URL: dsn, Source: EnvURL}
			logger.InfoContext(ctx, "using PostgreSQL", "source", s.Source, "url", Redact(dsn))
			return s, nil
		}
		tried = append(tried, EnvURL+" is not set")
	}
	if !opts.SkipLocal {
		err := ping(ctx, LocalURL, localPingTimeout)
		if err == nil {
			s := &Server{URL: LocalURL, Source: "local server at 127.0.0.1:5432"}
			logger.InfoContext(ctx, "using PostgreSQL", "source", s.Source, "url", LocalURL)
			return s, nil
		}
		tried = append(tried, fmt.Sprintf("no usable server at %s (%v)", LocalURL, err))
	}
	if !opts.SkipPrivate {
		s, err := startPrivate(ctx, logger, opts.Dir, opts.TLS, opts.Durable)
		if err == nil {
			logger.InfoContext(ctx, "using PostgreSQL", "source", s.Source, "url", s.URL)
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		tried = append(tried, fmt.Sprintf("could not start a private server: %v", err))
	}
	return nil, fmt.Errorf("no PostgreSQL available: %s. Provide one of: "+
		"set %s to a server where this user may create databases "+
		"(e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); "+
		"start PostgreSQL on 127.0.0.1:5432 accepting user postgres without a password; "+
		"or install the server binaries (initdb, pg_ctl) so a private server can be booted: "+
		"apt-get install postgresql",
		strings.Join(tried, "; "), EnvURL)
}

// ping connects to dsn and runs a round trip within timeout.
func ping(ctx context.Context, dsn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

// Redact returns dsn with any password replaced by "xxxxx", for logs.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		// keyword/value DSN: hide password=... values.
		fields := strings.Fields(dsn)
		for i, f := range fields {
			if strings.HasPrefix(f, "password=") {
				fields[i] = "password=xxxxx"
			}
		}
		return strings.Join(fields, " ")
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// errNotFound marks missing server binaries.
var errNotFound = errors.New("not found")
