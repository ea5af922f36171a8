package fault

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/carbuild/carbuild/dev/stack"
	"github.com/carbuild/carbuild/migrations/pgboot"
	"github.com/carbuild/carbuild/shared/devcert"
	"github.com/carbuild/carbuild/shared/grpctls"
)

// TestTLSEverywhere runs the whole stack with TLS on every hop (the
// gateway serves HTTPS only, gRPC between gateway, pricing and catalog is
// mutual TLS, PostgreSQL is a private server that accepts TCP only over
// TLS and the services connect with sslmode=verify-full), serves a quote
// through all of it, and checks that plaintext is refused at each hop and
// that a gRPC server refuses a client certificate of another CA or of a
// name it does not accept.
func TestTLSEverywhere(t *testing.T) {
	dir := t.TempDir()
	ca, caFile := devcert.TestCA(t, dir, "ca")
	localhost := devcert.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	issue := func(ca *devcert.CA, dir, name string) (cert, key string) {
		l := localhost
		l.Name = name
		cert, key, _ = ca.TestFiles(t, dir, l)
		return cert, key
	}
	for _, name := range []string{"gateway", "catalog", "pricing"} {
		issue(ca, dir, name)
	}
	pgCert, pgKey := issue(ca, dir, "postgres")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := pgboot.FindWith(ctx, nil, pgboot.FindOptions{TLS: &pgboot.ServerTLS{CertFile: pgCert, KeyFile: pgKey, CAFile: caFile}})
	if err != nil {
		t.Fatalf("private PostgreSQL with TLS: %v", err)
	}
	t.Cleanup(srv.Close)
	if !strings.Contains(srv.URL, "sslmode=verify-full") {
		t.Fatalf("server URL %s does not verify the server", pgboot.Redact(srv.URL))
	}
	dsn, err := pgboot.CreateDatabase(ctx, srv.URL, "carbuild_tls")
	if err != nil {
		t.Fatal(err)
	}
	s := startStack(t, stack.Config{DatabaseURL: dsn, TLS: &stack.TLS{Dir: dir}})

	t.Run("a quote through every hop", func(t *testing.T) {
		if !strings.HasPrefix(s.GatewayURL, "https://") {
			t.Fatalf("gateway URL %s, want https", s.GatewayURL)
		}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: s.ClientTLS}}
		defer client.CloseIdleConnections()
		resp, err := client.Post(s.GatewayURL+"/v1/quotes", "application/json", strings.NewReader(`{"items":[{"partId":"7","quantity":1}]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"total":{`) {
			t.Fatalf("quote over TLS: %d %s", resp.StatusCode, body)
		}
		if resp.TLS == nil || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("quote: TLS %v, HSTS %q; want both", resp.TLS != nil, resp.Header.Get("Strict-Transport-Security"))
		}
		// Every connection the services hold to the database is TLS.
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var plain, encrypted int
		err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) FILTER (WHERE s.ssl)
			FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
			WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()`).Scan(&plain, &encrypted)
		if err != nil {
			t.Fatal(err)
		}
		if plain != 0 || encrypted == 0 {
			t.Errorf("the services' database connections: %d plaintext, %d TLS; want 0 and some", plain, encrypted)
		}
	})

	t.Run("plain HTTP to the gateway", func(t *testing.T) {
		plain := &http.Client{Timeout: 10 * time.Second}
		resp, err := plain.Get("http://" + s.Addrs.Gateway + "/v1/cars")
		if err != nil {
			return // refused at the connection: fine
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// net/http answers plaintext on a TLS port 400 and serves nothing.
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "cars") {
			t.Errorf("plain HTTP: %d %s, want refused", resp.StatusCode, body)
		}
	})

	t.Run("gRPC clients", func(t *testing.T) {
		otherDir := t.TempDir()
		other, otherCA := devcert.TestCA(t, otherDir, "other-ca")
		files := func(ca *devcert.CA, dir, name, caFile string) grpctls.Files {
			cert, key := issue(ca, dir, name)
			return grpctls.Files{Cert: cert, Key: key, CA: caFile}
		}
		gatewayID := grpctls.Files{Cert: dir + "/gateway.crt", Key: dir + "/gateway.key", CA: caFile}
		intruder := files(ca, otherDir, "intruder", caFile)
		foreign := files(other, otherDir, "gateway", otherCA)
		foreign.CA = caFile // it trusts our servers; its own certificate is not ours
		withFiles := func(f grpctls.Files) grpc.DialOption {
			creds, err := grpctls.Client(f, "")
			if err != nil {
				t.Fatal(err)
			}
			return grpc.WithTransportCredentials(creds)
		}
		noCert := grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13}))
		tests := []struct {
			name   string
			opt    grpc.DialOption
			wantOK bool
		}{
			{"the gateway's identity", withFiles(gatewayID), true},
			{"plaintext", grpc.WithTransportCredentials(insecure.NewCredentials()), false},
			{"TLS without a client certificate", noCert, false},
			{"a name the server does not accept", withFiles(intruder), false},
			{"the right name from another CA", withFiles(foreign), false},
		}
		for _, svc := range []struct{ name, addr string }{{"catalog", s.Addrs.Catalog}, {"pricing", s.Addrs.Pricing}} {
			for _, tt := range tests {
				t.Run(svc.name+"/"+tt.name, func(t *testing.T) {
					conn, err := grpc.NewClient("passthrough:///"+svc.addr, tt.opt)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
					if tt.wantOK && err != nil {
						t.Errorf("got %v, want served", err)
					}
					if !tt.wantOK && err == nil {
						t.Error("served, want refused")
					}
				})
			}
		}
	})

	t.Run("PostgreSQL without TLS", func(t *testing.T) {
		plainURL := strings.Replace(dsn, "sslmode=verify-full", "sslmode=disable", 1)
		if plainURL == dsn {
			t.Fatalf("no sslmode in %s", pgboot.Redact(dsn))
		}
		conn, err := pgx.Connect(ctx, plainURL)
		if err == nil {
			conn.Close(ctx)
			t.Fatal("a plaintext connection to the database was accepted")
		}
		if !strings.Contains(err.Error(), "no encryption") && !strings.Contains(err.Error(), "pg_hba.conf") {
			t.Errorf("plaintext connection: %v, want refused by pg_hba.conf", err)
		}
	})
}
