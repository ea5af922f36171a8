package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestScrapeTimes(t *testing.T) {
	const exposition = `# HELP http_request_duration_seconds Time to answer HTTP requests.
http_request_duration_seconds_bucket{code="503",method="POST",route="/v1/orders",le="0.0025"} 7
http_request_duration_seconds_bucket{code="503",method="POST",route="/v1/orders",le="0.005"} 9
http_request_duration_seconds_bucket{code="503",method="POST",route="/v1/orders",le="+Inf"} 12
http_request_duration_seconds_count{code="503",method="POST",route="/v1/orders"} 12
http_request_duration_seconds_bucket{code="503",method="GET",route="/v1/cars",le="0.005"} 3
http_request_duration_seconds_count{code="503",method="GET",route="/v1/cars"} 3
http_request_duration_seconds_bucket{code="200",method="POST",route="/v1/orders",le="0.005"} 100
http_request_duration_seconds_count{code="200",method="POST",route="/v1/orders"} 400
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, exposition) }))
	defer srv.Close()
	got, err := scrapeTimes(context.Background(), srv.Client(), srv.URL, "503", "0.005")
	if err != nil {
		t.Fatal(err)
	}
	if want := (serverTimes{Count: 15, Within: 12}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if d := got.minus(serverTimes{Count: 5, Within: 4}); d != (serverTimes{Count: 10, Within: 8}) {
		t.Errorf("minus: %+v", d)
	}
}
