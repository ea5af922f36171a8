package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// serverTimes counts, from the gateway's own http_request_duration_seconds
// histogram, the answers of one status class and how many took at most a
// bound, measured inside the gateway (from the handler's start). Beside the
// client's figures it tells where time went: a shed answer slow at the
// client but fast here waited outside the gateway's handlers (in the
// kernel, the network, the client or for a CPU).
type serverTimes struct {
	Count, Within int
}

// scrapeTimes reads the cumulative counts for status code (e.g. "503")
// with le = bound ("0.005") from the gateway's metrics at base.
func scrapeTimes(ctx context.Context, client *http.Client, base, code, bound string) (serverTimes, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(base, "/")+"/metrics", nil)
	if err != nil {
		return serverTimes{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return serverTimes{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverTimes{}, fmt.Errorf("%s/metrics: %s", base, resp.Status)
	}
	var t serverTimes
	codeLabel := `code="` + code + `"`
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "http_request_duration_seconds_") || !strings.Contains(line, codeLabel) {
			continue
		}
		f := strings.Fields(line)
		n, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "http_request_duration_seconds_count{"):
			t.Count += int(n)
		case strings.HasPrefix(line, "http_request_duration_seconds_bucket{") && strings.Contains(line, `le="`+bound+`"`):
			t.Within += int(n)
		}
	}
	return t, sc.Err()
}

func (t serverTimes) minus(u serverTimes) serverTimes {
	return serverTimes{Count: t.Count - u.Count, Within: t.Within - u.Within}
}
