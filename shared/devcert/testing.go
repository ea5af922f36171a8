package devcert

import (
	"path/filepath"
	"testing"
	"time"
)

// Test helpers: the same authority and certificates, failing the test on
// error.

// TestCA makes a CA valid for the test (a day) and writes its certificate
// to dir/<name>.crt, which it returns with the CA.
func TestCA(t testing.TB, dir, name string) (*CA, string) {
	t.Helper()
	ca, err := NewCA(name, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".crt")
	if err := ca.WriteFile(file); err != nil {
		t.Fatal(err)
	}
	return ca, file
}

// TestFiles issues a certificate for l and writes it to dir as
// <l.Name>.crt and <l.Name>.key, which it returns with the certificate.
func (ca *CA) TestFiles(t testing.TB, dir string, l Leaf) (certFile, keyFile string, p *Pair) {
	t.Helper()
	p, err := ca.Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, l.Name+".crt"), filepath.Join(dir, l.Name+".key")
	if err := p.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, p
}
