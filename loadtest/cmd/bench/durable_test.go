package main

import (
	"strings"
	"testing"

	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/loadtest/internal/report"
)

func TestDurableTarget(t *testing.T) {
	good := durableStep{rate: 2000, confirmed: 100, stored: 100, distinctKeys: 100, walSyncs: 10, counted: true}
	tests := []struct {
		name     string
		problems []string
		p99      float64
		errors   int
		step     func(d *durableStep)
		rate     int
		wantPass bool
		wantGot  string
	}{
		{name: "met", p99: 12, wantPass: true, wantGot: "0.100 WAL flushes per order"},
		{name: "P99 over 20 ms", p99: 21},
		{name: "an error", p99: 5, errors: 1},
		{name: "a confirmed order missing", p99: 5, step: func(d *durableStep) { d.missing = 1; d.stored = 99; d.distinctKeys = 99 }},
		{name: "a key stored twice", p99: 5, step: func(d *durableStep) { d.stored = 101 }},
		{name: "one id confirmed twice", p99: 5, step: func(d *durableStep) { d.duplicateIDs = 1 }},
		{name: "the database not counted", p99: 5, step: func(d *durableStep) { d.counted = false }},
		{name: "not durable", p99: 5, problems: []string{"synchronous_commit is off, want on"}, wantGot: "NOT DURABLE: synchronous_commit is off"},
		{name: "2000 orders/s not reached", rate: 1000, wantGot: "not reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := good
			if tt.rate != 0 {
				d.rate = tt.rate
			}
			if tt.step != nil {
				tt.step(&d)
			}
			s := &report.Series{Steps: []*load.Stats{{Offered: float64(d.rate), Sent: 100, Errors: tt.errors, Latency: load.Latency{P99: tt.p99}}}}
			got := durableTarget(tt.problems, s, []durableStep{d})
			if got.Pass != tt.wantPass {
				t.Errorf("Pass = %v, want %v (got %q)", got.Pass, tt.wantPass, got.Got)
			}
			if !strings.Contains(got.Got, tt.wantGot) {
				t.Errorf("Got = %q, want it to contain %q", got.Got, tt.wantGot)
			}
		})
	}
}
