package grpctls_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/carbuild/carbuild/shared/grpctls"
)

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCA(t *testing.T, name string) authority {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return authority{c, key}
}

var serial int64 = 10

// issue writes a leaf certificate for name (a DNS name, and 127.0.0.1) and
// its key into dir, and returns the files with the CA's.
func (a authority) issue(t *testing.T, dir, name, caFile string) grpctls.Files {
	t.Helper()
	serial++
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	f := grpctls.Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: caFile}
	write(t, f.Cert, "CERTIFICATE", der)
	write(t, f.Key, "EC PRIVATE KEY", kder)
	return f
}

func write(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMutualTLS serves grpc.health.v1 with mTLS on, accepting the client
// identity "gateway" only: that client is served; a client of another
// identity, one signed by another CA, one without a certificate and a
// plaintext one are all refused.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, "carbuild-ca"), newCA(t, "other-ca")
	caFile, otherFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "other.crt")
	write(t, caFile, "CERTIFICATE", ca.cert.Raw)
	write(t, otherFile, "CERTIFICATE", other.cert.Raw)

	serverOpts, err := grpctls.ServerOptions(ca.issue(t, dir, "catalog", caFile), "gateway, pricing")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(serverOpts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	gateway := ca.issue(t, dir, "gateway", caFile)
	intruder := ca.issue(t, dir, "intruder", caFile)
	foreign := other.issue(t, dir, "pricing", otherFile)
	foreign.CA = caFile // it trusts our server, but its own certificate is not ours
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)

	dialOpts := func(f grpctls.Files) []grpc.DialOption {
		o, err := grpctls.DialOptions(f)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct {
		name   string
		opts   []grpc.DialOption
		wantOK bool
	}{
		{"allowed client", dialOpts(gateway), true},
		{"other identity, same CA", dialOpts(intruder), false},
		{"certificate of another CA", dialOpts(foreign), false},
		{"no client certificate", []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}))}, false},
		{"plaintext", []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := grpc.NewClient(lis.Addr().String(), tt.opts...)
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

// TestFilesTogether: the three files go together; none is plaintext.
func TestFilesTogether(t *testing.T) {
	for _, tt := range []struct {
		f              grpctls.Files
		wantOn, wantOK bool
	}{
		{grpctls.Files{}, false, true},
		{grpctls.Files{Cert: "a", Key: "b", CA: "c"}, true, true},
		{grpctls.Files{Cert: "a", Key: "b"}, false, false},
		{grpctls.Files{CA: "c"}, false, false},
	} {
		on, err := tt.f.Enabled()
		if on != tt.wantOn || (err == nil) != tt.wantOK {
			t.Errorf("%+v: got %v, %v; want %v, ok %v", tt.f, on, err, tt.wantOn, tt.wantOK)
		}
	}
	if opts, err := grpctls.ServerOptions(grpctls.Files{}, ""); err != nil || opts != nil {
		t.Errorf("mTLS off: server options %v, %v; want none", opts, err)
	}
}
