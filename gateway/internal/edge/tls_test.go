package edge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/carbuild/carbuild/shared/devcert"
)

// writePair writes a certificate for 127.0.0.1 with the given serial
// number, signed by ca, to the files of the name "gateway".
func writePair(t *testing.T, ca *devcert.CA, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, _ = ca.TestFiles(t, dir, devcert.Leaf{Name: "gateway", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Serial: serial})
	return certFile, keyFile
}

// TestCertReloader drives the reloader with a fake clock: a new pair is
// served after the next check, a broken one keeps the old certificate.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	ca, _ := devcert.TestCA(t, dir, "ca")
	certFile, keyFile := writePair(t, ca, dir, 1)
	r, err := NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	r.now, r.checked = func() time.Time { return now }, now
	serial := func() int64 {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		x, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return x.SerialNumber.Int64()
	}
	// A distinct modification time for each version: file systems with a
	// coarse clock could otherwise give two writes the same one.
	touch := func(d time.Duration) {
		for _, f := range []string{certFile, keyFile} {
			if err := os.Chtimes(f, now.Add(d), now.Add(d)); err != nil {
				t.Fatal(err)
			}
		}
	}

	steps := []struct {
		name    string
		do      func()
		advance time.Duration
		want    int64
	}{
		{"first", func() {}, 0, 1},
		{"renewed, not checked yet", func() { writePair(t, ca, dir, 2); touch(time.Hour) }, 500 * time.Millisecond, 1},
		{"renewed, checked", func() {}, time.Second, 2},
		{"half-written pair keeps the old one", func() {
			if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
			touch(2 * time.Hour)
		}, time.Second, 2},
		{"completed pair is loaded", func() { writePair(t, ca, dir, 3); touch(3 * time.Hour) }, time.Second, 3},
	}
	for _, s := range steps {
		s.do()
		now = now.Add(s.advance)
		if got := serial(); got != s.want {
			t.Errorf("%s: serving certificate %d, want %d", s.name, got, s.want)
		}
	}
	if _, err := NewCertReloader(certFile, filepath.Join(dir, "missing.key")); err == nil {
		t.Error("NewCertReloader accepted a missing key file")
	}
}

// TestHTTPSOnly serves a handler as the gateway does with TLS on: a TLS
// client gets the answer with HSTS; a plaintext request is refused.
func TestHTTPSOnly(t *testing.T) {
	dir := t.TempDir()
	ca, _ := devcert.TestCA(t, dir, "ca")
	certFile, keyFile := writePair(t, ca, dir, 7)
	r, err := NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           HSTS(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })),
		TLSConfig:         TLSConfig(r),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // the refused handshakes below
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(lis, "", "") }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	addr := lis.Addr().String()

	pool := ca.Pool()
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := tlsClient.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || resp.Header.Get("Strict-Transport-Security") == "" || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("over TLS: %d %q HSTS %q", resp.StatusCode, body, resp.Header.Get("Strict-Transport-Security"))
	}

	plain := &http.Client{Timeout: 10 * time.Second}
	resp, err = plain.Get("http://" + addr + "/")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// net/http answers a plaintext request on a TLS port 400 and serves nothing.
		if resp.StatusCode != http.StatusBadRequest || string(body) == "ok" {
			t.Errorf("plaintext request: %d %q, want refused", resp.StatusCode, body)
		}
	}
	// TLS 1.1 is refused at the handshake.
	old := &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", addr, old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}
