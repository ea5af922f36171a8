package edge

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"
)

// CertReloader serves a certificate from PEM files and loads them again when
// they change, so a renewed certificate (cert-manager rewriting a mounted
// Secret, an operator replacing the files) is used without a restart. The
// files are looked at, at most once per CheckEvery, on a TLS handshake. A
// change that does not load (a half-written pair) keeps the previous
// certificate, and is retried at the next check.
type CertReloader struct {
	certFile, keyFile string
	// CheckEvery bounds how often the files are looked at.
	CheckEvery time.Duration
	now        func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // size and modification time of both files when loaded
	checked time.Time
}

// NewCertReloader loads the pair once; it fails when it does not load.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile, CheckEvery: time.Second, now: time.Now}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s, key %s: %w", certFile, keyFile, err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, r.now()
	return r, nil
}

// fileStamp identifies the current contents of both files (stat follows
// symlinks, as Kubernetes swaps a Secret volume's files through one).
func (r *CertReloader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("TLS file: %w", err)
		}
		s += fmt.Sprintf("%d:%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= r.CheckEvery {
		r.checked = now
		if stamp, err := r.fileStamp(); err == nil && stamp != r.stamp {
			if cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile); err == nil {
				r.cert, r.stamp = &cert, stamp
			}
		}
	}
	return r.cert, nil
}

// TLSConfig is the gateway's server TLS configuration: TLS 1.2 or newer,
// the certificate from r.
func TLSConfig(r *CertReloader) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// HSTS tells browsers to use only HTTPS for this host for a year; sent only
// when the gateway serves HTTPS (over plain HTTP browsers ignore it).
func HSTS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}
