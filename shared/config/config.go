// Package config reads a service's settings from flags and environment
// variables. Every setting has both: the environment gives the default, a flag
// on the command line wins. `-h` lists each flag with its variable.
package config

import (
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/carbuild/carbuild/shared/grpctls"
)

// Set is a group of settings backed by a flag.FlagSet.
type Set struct {
	fs     *flag.FlagSet
	lookup func(string) (string, bool)
	errs   []error
}

// New returns an empty Set for the program name; lookupEnv is usually
// os.LookupEnv.
func New(program string, lookupEnv func(string) (string, bool)) *Set {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	return &Set{fs: fs, lookup: lookupEnv}
}

// FlagSet exposes the underlying flag set (for usage output in tests).
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

func (s *Set) env(name, env string, parse func(string) error) {
	v, ok := s.lookup(env)
	if !ok || v == "" {
		return
	}
	if err := parse(v); err != nil {
		s.errs = append(s.errs, fmt.Errorf("env %s=%q: %w", env, v, err))
	}
}

func usage(text, env string) string { return fmt.Sprintf("%s (env %s)", text, env) }

// String defines a string setting.
func (s *Set) String(p *string, name, env, def, text string) {
	*p = def
	s.env(name, env, func(v string) error { *p = v; return nil })
	s.fs.StringVar(p, name, *p, usage(text, env))
}

// Secret defines a string setting whose value is masked wherever it is
// shown: in the start-up log and as the default `-h` prints (which may come
// from the environment). For URLs only the password is masked.
func (s *Set) Secret(p *string, name, env, def, text string) {
	*p = def
	s.env(name, env, func(v string) error { *p = v; return nil })
	s.fs.Var(secretValue{p}, name, usage(text, env))
}

// secretValue is a secret setting's flag.Value: its String is masked.
type secretValue struct{ p *string }

func (v secretValue) String() string {
	if v.p == nil {
		return ""
	}
	return Mask(*v.p)
}

func (v secretValue) Set(s string) error { *v.p = s; return nil }

// Int defines an int setting.
func (s *Set) Int(p *int, name, env string, def int, text string) {
	*p = def
	s.env(name, env, func(v string) error {
		n, err := strconv.Atoi(v)
		*p = n
		return err
	})
	s.fs.IntVar(p, name, *p, usage(text, env))
}

// Bool defines a bool setting.
func (s *Set) Bool(p *bool, name, env string, def bool, text string) {
	*p = def
	s.env(name, env, func(v string) error {
		b, err := strconv.ParseBool(v)
		*p = b
		return err
	})
	s.fs.BoolVar(p, name, *p, usage(text, env))
}

// Duration defines a duration setting ("15s", "250ms").
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, text string) {
	*p = def
	s.env(name, env, func(v string) error {
		d, err := time.ParseDuration(v)
		*p = d
		return err
	})
	s.fs.DurationVar(p, name, *p, usage(text, env))
}

// Parse reads the command line. It reports bad environment values first,
// then bad flags. flag.ErrHelp is returned after `-h` printed the usage.
func (s *Set) Parse(args []string) error {
	if len(s.errs) > 0 {
		return fmt.Errorf("config: %w", s.errs[0])
	}
	return s.fs.Parse(args)
}

// LogValue lists every setting with its value, secrets masked, for the
// start-up log line.
func (s *Set) LogValue() slog.Value {
	var attrs []slog.Attr
	s.fs.VisitAll(func(f *flag.Flag) {
		attrs = append(attrs, slog.String(f.Name, f.Value.String()))
	})
	return slog.GroupValue(attrs...)
}

// Mask hides a secret: the password of a URL, or the whole value otherwise.
func Mask(v string) string {
	if v == "" {
		return ""
	}
	if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Host != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return "(masked)"
}

// Common holds the settings every service has: logging, the shutdown
// sequence and pprof.
type Common struct {
	LogLevel, LogFormat            string
	ShutdownTimeout, ShutdownDelay time.Duration
	Pprof                          bool
	// Reflection serves gRPC server reflection (gRPC services only; see
	// GRPCReflection).
	Reflection bool
	// GRPCTLS are the mutual-TLS files between the services, and
	// GRPCTLSClients the client identities a server accepts (see GRPCTLS).
	GRPCTLS        grpctls.Files
	GRPCTLSClients string
}

// Common defines the shared settings on s; pprofText says where the
// profiles are served.
func (s *Set) Common(c *Common, pprofText string) {
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.String(&c.LogFormat, "log-format", "LOG_FORMAT", "json", "log format: json or text")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 15*time.Second, "longest graceful drain on SIGTERM")
	s.Duration(&c.ShutdownDelay, "shutdown-delay", "SHUTDOWN_DELAY", 0, "time to keep serving after readiness turns off, before draining")
	s.Bool(&c.Pprof, "pprof", "PPROF", false, pprofText)
}

// GRPCTLS defines the mutual TLS of gRPC between the services: off unless
// the three files are set; server says whether this process serves gRPC
// (and so names the clients it accepts).
func (s *Set) GRPCTLS(c *Common, server bool) {
	s.String(&c.GRPCTLS.Cert, "grpc-tls-cert", "GRPC_TLS_CERT", "", "PEM certificate of this service for gRPC mTLS (with -grpc-tls-key and -grpc-tls-ca; unset: plaintext)")
	s.String(&c.GRPCTLS.Key, "grpc-tls-key", "GRPC_TLS_KEY", "", "PEM private key of -grpc-tls-cert")
	s.String(&c.GRPCTLS.CA, "grpc-tls-ca", "GRPC_TLS_CA", "", "PEM CA that signs the services' certificates")
	if server {
		s.String(&c.GRPCTLSClients, "grpc-tls-clients", "GRPC_TLS_CLIENTS", "", "comma-separated client identities (DNS names of their certificates) allowed to call with mTLS on")
	}
}

// GRPCReflection defines GRPC_REFLECTION for the gRPC services. Reflection
// lists every service and message to anyone who can reach the port: handy
// with grpcurl, so on by default for `make run`, and turned off in the
// Kubernetes production overlay.
func (s *Set) GRPCReflection(c *Common) {
	s.Bool(&c.Reflection, "grpc-reflection", "GRPC_REFLECTION", true, "serve gRPC server reflection (what grpcurl list uses)")
}
