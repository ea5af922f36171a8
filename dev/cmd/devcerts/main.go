// Command devcerts makes a development CA and the certificates of the
// Kubernetes TLS overlay (k8s/overlays/tls): one per service (gateway,
// catalog, pricing) and one for PostgreSQL, each valid for the names the
// others reach it by in the namespace. Files that already exist are kept,
// so running it again changes nothing; -force makes a new set.
//
//	go run ./dev/cmd/devcerts -out k8s/overlays/tls/certs
//
// Development only: the CA's key is thrown away, and production certificates
// come from a real CA (e.g. cert-manager) into the same Secrets.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/carbuild/carbuild/shared/devcert"
)

// names are the certificates made: the service and its DNS names.
var names = []string{"gateway", "catalog", "pricing", "postgres"}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "devcerts:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("devcerts", flag.ContinueOnError)
	out := flags.String("out", "k8s/overlays/tls/certs", "folder for ca.crt and NAME.crt, NAME.key")
	ns := flags.String("namespace", "carbuild", "Kubernetes namespace the services run in")
	validity := flags.Duration("validity", 365*24*time.Hour, "how long the certificates are valid")
	force := flags.Bool("force", false, "make a new set even if the files exist")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if !*force && complete(*out) {
		fmt.Printf("devcerts: %s already holds a CA and every certificate (-force makes a new set)\n", *out)
		return nil
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	ca, err := devcert.NewCA("carbuild-dev-ca", *validity)
	if err != nil {
		return err
	}
	if err := ca.WriteFile(filepath.Join(*out, "ca.crt")); err != nil {
		return err
	}
	for _, name := range names {
		p, err := ca.Issue(leaf(name, *ns, *validity))
		if err != nil {
			return err
		}
		if err := p.WriteFiles(filepath.Join(*out, name+".crt"), filepath.Join(*out, name+".key")); err != nil {
			return err
		}
	}
	fmt.Printf("devcerts: wrote ca.crt and %v certificates to %s\n", names, *out)
	return nil
}

// leaf is the certificate of name: the Service's short and qualified names,
// its headless Service's (the gRPC clients dial dns:///NAME-headless:PORT),
// and, for the gateway, localhost (reached through ctlptl's port mapping).
func leaf(name, ns string, validity time.Duration) devcert.Leaf {
	var dns []string
	for _, host := range []string{name, name + "-headless"} {
		dns = append(dns, host+"."+ns, host+"."+ns+".svc", host+"."+ns+".svc.cluster.local")
	}
	dns = append(dns, name+"-headless")
	l := devcert.Leaf{Name: name, DNSNames: dns, Validity: validity}
	if name == "gateway" {
		l.DNSNames = append(l.DNSNames, "localhost")
		l.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	return l
}

// complete reports whether dir holds every file already.
func complete(dir string) bool {
	files := []string{"ca.crt"}
	for _, n := range names {
		files = append(files, n+".crt", n+".key")
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}
