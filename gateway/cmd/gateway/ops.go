package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/shared/metrics"
)

// opsServer is the gateway's private operations listener: /metrics, and
// /debug/pprof/ when pprof is on, as catalog and pricing have. They are not
// on the public port: a scrape costs CPU and its answer tells an attacker
// about the system, and a pprof profile stalls the process it profiles.
type opsServer struct {
	srv *http.Server
	lis net.Listener
}

func listenOps(addr string, reg *prometheus.Registry, pprof bool) (*opsServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics %s: %w", addr, err)
	}
	writeTimeout := 10 * time.Second
	if pprof {
		writeTimeout = 60 * time.Second // a 30 s CPU profile
	}
	return &opsServer{srv: metrics.NewHTTPServer(addr, metrics.Mux(reg, pprof), writeTimeout), lis: lis}, nil
}

// serve serves until shutdown; a failure is sent on errc.
func (o *opsServer) serve(errc chan<- error) {
	if err := o.srv.Serve(o.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		errc <- fmt.Errorf("serve metrics: %w", err)
	}
}
