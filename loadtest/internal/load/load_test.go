package load

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// scenario sends GET / and fails the check on every answer whose body is "bad".
func scenario(url string) Scenario {
	return Scenario{
		Name:     "test",
		Targeter: func(t *vegeta.Target) error { t.Method, t.URL = http.MethodGet, url; return nil },
		Kind:     func(string) string { return "GET /" },
		Check: func(r *vegeta.Result) error {
			if r.Code != 200 {
				return errors.New("status")
			}
			if string(r.Body) == "bad" {
				return errors.New("bad body")
			}
			return nil
		},
	}
}

func server(badEvery int64) *httptest.Server {
	var n atomic.Int64
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if badEvery > 0 && n.Add(1)%badEvery == 0 {
			w.Write([]byte("bad"))
			return
		}
		w.Write([]byte("ok"))
	}))
}

func TestOpenOffersTheRate(t *testing.T) {
	srv := server(0)
	defer srv.Close()
	s, err := Open(context.Background(), NewClient(16, time.Second), scenario(srv.URL), 200, time.Second, 0, &Progress{})
	if err != nil {
		t.Fatal(err)
	}
	// The pacer never offers more than the rate; how close to it a loaded
	// machine comes is a figure (logged), not a property: a generator that
	// falls behind sends fewer, and the bench reports what was really sent.
	t.Logf("200/s for 1 s: sent %d", s.Sent)
	if s.Sent == 0 || s.Sent > 201 || s.Errors != 0 || s.OK != s.Sent {
		t.Errorf("200/s for 1 s: sent %d (want 1-201), ok %d, errors %d", s.Sent, s.OK, s.Errors)
	}
	if s.Latency.P99 <= 0 || s.Latency.P50 > s.Latency.P99 || s.Latency.P99 > s.Latency.Max {
		t.Errorf("latency %+v: want 0 < P50 <= P99 <= max", s.Latency)
	}
}

func TestChecksCountAsErrors(t *testing.T) {
	srv := server(4)
	defer srv.Close()
	s, err := Closed(context.Background(), NewClient(4, time.Second), scenario(srv.URL), 4, 0, 300*time.Millisecond, &Progress{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sent == 0 || s.Errors == 0 || s.Reasons["bad body"] != s.Errors {
		t.Fatalf("closed loop with every 4th body bad: sent %d, errors %d, reasons %v", s.Sent, s.Errors, s.Reasons)
	}
	if r := s.ErrorRatio; r < 0.2 || r > 0.3 {
		t.Errorf("error ratio %.2f, want about 0.25", r)
	}
	if s.PerKind["GET /"] == nil || s.PerKind["GET /"].Sent != s.Sent {
		t.Errorf("per-kind figures missing: %+v", s.PerKind)
	}
}

func TestTransportErrors(t *testing.T) {
	srv := server(0)
	url := srv.URL
	srv.Close()
	s, err := Open(context.Background(), NewClient(4, 200*time.Millisecond), scenario(url), 50, 200*time.Millisecond, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Errors == 0 || s.OK != 0 {
		t.Errorf("closed server: ok %d, errors %d; want only errors", s.OK, s.Errors)
	}
}

func TestPercentiles(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	got := percentiles(lat)
	if got.P50 != 50 || got.P95 != 95 || got.P99 != 99 || got.Max != 100 {
		t.Errorf("percentiles(1..100 ms) = %+v", got)
	}
}
