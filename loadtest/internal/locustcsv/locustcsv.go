// Package locustcsv reads the CSV files Locust writes with --csv PREFIX:
// PREFIX_stats.csv (totals per endpoint), PREFIX_stats_history.csv (the
// aggregate every few seconds) and PREFIX_failures.csv.
package locustcsv

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Row is one line of PREFIX_stats.csv (times in ms).
type Row struct {
	Method, Name   string
	Requests       int
	Failures       int
	Median, Avg    float64
	Min, Max       float64
	RPS            float64
	FailuresPerSec float64
	Pct            map[string]float64 // "50%", "95%", "99%", …
}

// Stats is PREFIX_stats.csv: one row per endpoint and the "Aggregated" total.
type Stats struct {
	Endpoints []Row
	Total     Row
}

// Sample is one Aggregated line of PREFIX_stats_history.csv.
type Sample struct {
	Unix     int64
	Users    int
	RPS      float64
	FailRPS  float64
	P50, P95 float64
	P99      float64
}

// Failure is one line of PREFIX_failures.csv.
type Failure struct {
	Method, Name, Error string
	Occurrences         int
}

func readCSV(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	var out []map[string]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m := map[string]string{}
		for i, h := range head {
			if i < len(rec) {
				m[h] = rec[i]
			}
		}
		out = append(out, m)
	}
}

func num(s string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0 // Locust writes "N/A" before the first answer
	}
	return v
}

var pcts = []string{"50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"}

// ReadStats reads PREFIX_stats.csv.
func ReadStats(prefix string) (*Stats, error) {
	recs, err := readCSV(prefix + "_stats.csv")
	if err != nil {
		return nil, err
	}
	s := &Stats{}
	for _, m := range recs {
		row := Row{
			Method: m["Type"], Name: m["Name"],
			Requests: int(num(m["Request Count"])), Failures: int(num(m["Failure Count"])),
			Median: num(m["Median Response Time"]), Avg: num(m["Average Response Time"]),
			Min: num(m["Min Response Time"]), Max: num(m["Max Response Time"]),
			RPS: num(m["Requests/s"]), FailuresPerSec: num(m["Failures/s"]),
			Pct: map[string]float64{},
		}
		for _, p := range pcts {
			row.Pct[p] = num(m[p])
		}
		if row.Name == "Aggregated" {
			s.Total = row
		} else {
			s.Endpoints = append(s.Endpoints, row)
		}
	}
	return s, nil
}

// ReadHistory reads the Aggregated lines of PREFIX_stats_history.csv.
func ReadHistory(prefix string) ([]Sample, error) {
	recs, err := readCSV(prefix + "_stats_history.csv")
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, m := range recs {
		if m["Name"] != "Aggregated" {
			continue
		}
		out = append(out, Sample{
			Unix: int64(num(m["Timestamp"])), Users: int(num(m["User Count"])),
			RPS: num(m["Requests/s"]), FailRPS: num(m["Failures/s"]),
			P50: num(m["50%"]), P95: num(m["95%"]), P99: num(m["99%"]),
		})
	}
	return out, nil
}

// ReadFailures reads PREFIX_failures.csv.
func ReadFailures(prefix string) ([]Failure, error) {
	recs, err := readCSV(prefix + "_failures.csv")
	if err != nil {
		return nil, err
	}
	var out []Failure
	for _, m := range recs {
		out = append(out, Failure{Method: m["Method"], Name: m["Name"], Error: m["Error"], Occurrences: int(num(m["Occurrences"]))})
	}
	return out, nil
}
