package lifecycle

import (
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"testing"
)

// TestHTTPLeavingClosesConnections: once shutdown begins, each answer asks
// the client to close its keep-alive connection, so the next request opens
// a new one (which a load balancer sends to another instance) instead of
// racing the drain's close of the idle connection.
func TestHTTPLeavingClosesConnections(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	s := HTTP("http", lis, srv)
	go func() { _ = s.serve() }()
	defer s.stop()

	client := &http.Client{Transport: &http.Transport{}}
	get := func() (resp *http.Response, reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequest("GET", "http://"+lis.Addr().String()+"/", nil)
		resp, err := client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, reused
	}
	for i, tt := range []struct {
		leave, wantClose, wantReused bool
	}{
		{false, false, false}, // the first request opens the connection
		{false, false, true},  // serving: keep-alive
		{true, true, true},    // shutdown began: answered on it, then closed
		{false, true, false},  // so the next request comes on a new connection
	} {
		if tt.leave {
			s.leaving()
		}
		resp, reused := get()
		if resp.Close != tt.wantClose || reused != tt.wantReused {
			t.Errorf("request %d: Connection close %v, reused connection %v; want %v, %v", i, resp.Close, reused, tt.wantClose, tt.wantReused)
		}
	}
}
