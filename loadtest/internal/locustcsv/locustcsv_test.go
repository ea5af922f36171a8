package locustcsv

import (
	"os"
	"path/filepath"
	"testing"
)

// Lines as Locust 2.12.1 writes them (trimmed to a few columns where it allows).
const stats = `Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
POST,/calcular,17,17,5,7.7,0,19,19.0,6.05,6.05,5,18,18,18,19,19,19,19,19,19,19
POST,/get-pecas,31,0,24,16.6,0,42,330.9,11.04,0.0,24,25,26,28,36,42,42,42,42,42,42
,Aggregated,48,17,18,13.4,0,42,220.4,17.1,6.05,18,24,25,26,36,41,42,42,42,42,42
`

const history = `Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count
1795779344,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0
1795779345,20,,Aggregated,12.5,1.5,20,24,25,26,36,41,42,43,44,44,44,30,3
`

const failures = `Method,Name,Error,Occurrences
POST,/calcular,"CatchResponseError(""status 404, want 200: '404 page not found\\n'"")",17
`

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x")
	for suffix, body := range map[string]string{"_stats.csv": stats, "_stats_history.csv": history, "_failures.csv": failures} {
		if err := os.WriteFile(p+suffix, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ReadStats(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Endpoints) != 2 || s.Total.Requests != 48 || s.Total.Failures != 17 || s.Total.Pct["99%"] != 42 || s.Total.RPS != 17.1 {
		t.Errorf("ReadStats = %+v", s)
	}
	h, err := ReadHistory(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].P99 != 0 || h[1].Users != 20 || h[1].P99 != 43 {
		t.Errorf("ReadHistory = %+v", h)
	}
	f, err := ReadFailures(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 1 || f[0].Occurrences != 17 || f[0].Name != "/calcular" {
		t.Errorf("ReadFailures = %+v", f)
	}
	if _, err := ReadStats(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadStats of a missing file: want an error")
	}
}
