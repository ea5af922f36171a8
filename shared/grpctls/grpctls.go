// Package grpctls is mutual TLS between the services: each presents a
// certificate signed by a shared CA, a server accepts only the client
// identities it names, and a client checks the server's name.
package grpctls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Files name the PEM files of mutual TLS between the services: this
// process's certificate and key, and the CA that signs its peers'.
type Files struct {
	Cert, Key, CA string
}

// Enabled reports whether mTLS is configured; all three files or none.
func (f Files) Enabled() (bool, error) {
	n := 0
	for _, s := range []string{f.Cert, f.Key, f.CA} {
		if s != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return false, errors.New("gRPC TLS needs the certificate, the key and the CA files together (GRPC_TLS_CERT, GRPC_TLS_KEY, GRPC_TLS_CA)")
	}
	return n == 3, nil
}

func (f Files) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("gRPC TLS certificate: %w", err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("gRPC TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("gRPC TLS CA %s: no PEM certificate", f.CA)
	}
	return cert, pool, nil
}

// Server returns the server side of mTLS: TLS 1.3, a client
// certificate signed by the CA is required, and its identity (a DNS name of
// its subject alternative names) must be one of clients. A call from anyone
// else, or in plaintext, fails at the handshake.
func Server(f Files, clients []string) (credentials.TransportCredentials, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	if len(clients) == 0 {
		return nil, errors.New("gRPC TLS: name the client identities allowed (GRPC_TLS_CLIENTS)")
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			leaf := cs.PeerCertificates[0]
			for _, name := range leaf.DNSNames {
				if slices.Contains(clients, name) {
					return nil
				}
			}
			return fmt.Errorf("client %v is not one of %v", leaf.DNSNames, clients)
		},
	}), nil
}

// Client returns the client side of mTLS: this process's certificate,
// and the server's checked against the CA and serverName (the name the
// server's certificate carries, e.g. "catalog"; empty: the target's host).
func Client(f Files, serverName string) (credentials.TransportCredentials, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   serverName,
	}), nil
}

// ServerOptions are the grpc.Server options for f: none when mTLS is off.
// clients is the comma-separated list of client identities allowed.
func ServerOptions(f Files, clients string) ([]grpc.ServerOption, error) {
	on, err := f.Enabled()
	if !on || err != nil {
		return nil, err
	}
	creds, err := Server(f, splitList(clients))
	if err != nil {
		return nil, err
	}
	return []grpc.ServerOption{grpc.Creds(creds)}, nil
}

// DialOptions are the dial options for f: none when mTLS is off (the
// connection then stays plaintext). The server's name is checked against
// the host of the dialled target (for "dns:///catalog-headless:50051",
// catalog-headless).
func DialOptions(f Files) ([]grpc.DialOption, error) {
	on, err := f.Enabled()
	if !on || err != nil {
		return nil, err
	}
	creds, err := Client(f, "")
	if err != nil {
		return nil, err
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds)}, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
