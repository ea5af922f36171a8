package load

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// countingServer serves h and reports each connection it opens and closes.
func countingServer(t *testing.T, h http.HandlerFunc) (srv *httptest.Server, opened, closed chan struct{}) {
	opened, closed = make(chan struct{}, 100), make(chan struct{}, 100)
	srv = httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened <- struct{}{}
		case http.StateClosed, http.StateHijacked:
			closed <- struct{}{}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, opened, closed
}

func testConn() *conn {
	d, _ := dialer(NewClient(1, 2*time.Second))
	return &conn{dial: d, timeout: 2 * time.Second}
}

func TestConnSendsTheRequestAndReusesTheConnection(t *testing.T) {
	srv, opened, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusAccepted)
		w.Write(append([]byte("echo:"), body...))
	})
	c := testConn()
	defer c.close()
	for i := range 5 {
		res := c.do(&vegeta.Target{Method: http.MethodPost, URL: srv.URL + "/v1/quotes?x=1", Body: []byte(`{"a":1}`),
			Header: http.Header{"Content-Type": {"application/json"}}})
		if res.Error != "" || res.Code != http.StatusAccepted || string(res.Body) != `echo:{"a":1}` {
			t.Fatalf("request %d: code %d, body %q, error %q", i, res.Code, res.Body, res.Error)
		}
		if got := res.Headers.Get("X-Seen"); got != "POST /v1/quotes?x=1 application/json" {
			t.Fatalf("request %d: the server saw %q", i, got)
		}
		if res.Latency <= 0 || res.Method != http.MethodPost || res.URL != srv.URL+"/v1/quotes?x=1" {
			t.Fatalf("request %d: result %+v", i, res)
		}
	}
	if n := len(opened); n != 1 {
		t.Errorf("5 requests one after another opened %d connections, want 1", n)
	}
}

func TestConnSendsAgainWhenTheServerClosedTheIdleConnection(t *testing.T) {
	srv, opened, closed := countingServer(t, func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	c := testConn()
	defer c.close()
	if res := c.do(&vegeta.Target{Method: http.MethodGet, URL: srv.URL}); res.Error != "" || string(res.Body) != "ok" {
		t.Fatalf("first request: %+v", res)
	}
	srv.CloseClientConnections()
	<-closed // the server has closed the idle connection
	res := c.do(&vegeta.Target{Method: http.MethodGet, URL: srv.URL})
	if res.Error != "" || res.Code != http.StatusOK || string(res.Body) != "ok" {
		t.Fatalf("request after the server closed the connection: code %d, body %q, error %q", res.Code, res.Body, res.Error)
	}
	if n := len(opened); n != 2 {
		t.Errorf("opened %d connections, want 2 (the first, then a new one)", n)
	}
}

func TestConnReadsChunkedAnswersAndHonoursConnectionClose(t *testing.T) {
	srv, opened, _ := countingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("part one, "))
		w.(http.Flusher).Flush() // no Content-Length: the answer is chunked
		w.Write([]byte("part two"))
	})
	c := testConn()
	defer c.close()
	for i := range 2 {
		res := c.do(&vegeta.Target{Method: http.MethodGet, URL: srv.URL})
		if res.Error != "" || string(res.Body) != "part one, part two" {
			t.Fatalf("request %d: body %q, error %q", i, res.Body, res.Error)
		}
	}
	if n := len(opened); n != 2 {
		t.Errorf("two answers with Connection: close opened %d connections, want 2", n)
	}
}

func TestConnTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv, _, _ := countingServer(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	c := &conn{timeout: 50 * time.Millisecond}
	c.dial, _ = dialer(NewClient(1, time.Second))
	res := c.do(&vegeta.Target{Method: http.MethodGet, URL: srv.URL})
	if res.Error == "" || res.Code != 0 || res.Latency < 50*time.Millisecond {
		t.Fatalf("an answer that never comes: code %d, error %q after %v; want a timeout after 50 ms", res.Code, res.Error, res.Latency)
	}
	if c.nc != nil {
		t.Error("the connection that timed out is kept")
	}
}

func TestOpenKeepsAtMostMaxInFlightOutstanding(t *testing.T) {
	release := make(chan struct{})
	srv, opened, _ := countingServer(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	// 100 requests are due in the 100 ms window; each answer would take
	// forever and times out after a second, so no connection is free before
	// the window ends: exactly 3 are sent, and they time out.
	s, err := Open(context.Background(), NewClient(3, time.Second), scenario(srv.URL), 1000, 100*time.Millisecond, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Sent != 3 || s.Errors != 3 || len(opened) != 3 {
		t.Errorf("sent %d, errors %d, connections %d; want 3, 3, 3", s.Sent, s.Errors, len(opened))
	}
}
