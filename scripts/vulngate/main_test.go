package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stream is a govulncheck -format json stream with one called finding of
// GO-1 in the standard library and one only imported finding of GO-2.
const stream = `{"config":{"scanner_version":"v1.9.0","db":"file:///db","db_last_modified":"2026-11-05T23:49:57Z","go_version":"go1.26.8"}}
{"osv":{"id":"GO-1","summary":"called one"}}
{"osv":{"id":"GO-2","summary":"imported one"}}
{"finding":{"osv":"GO-1","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Serve"},{"module":"m","package":"m/p","function":"Run","position":{"filename":"/x/p.go","line":3}}]}}
{"finding":{"osv":"GO-2","fixed_version":"v0.45.0","trace":[{"module":"golang.org/x/image","version":"v0.30.0","package":"golang.org/x/image/font"}]}}
`

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		accepted string // file content; "" means no file
		wantErr  string // "" means pass
	}{
		{"called and not accepted fails", "", "1 called vulnerabilities not accepted"},
		{"accepted for the module passes", "GO-1 shared stdlib, awaits the toolchain\n", ""},
		{"accepted for every module passes", "# comment\nGO-1 * stdlib\n", ""},
		{"accepted for another module fails", "GO-1 catalog stdlib\n", "1 called vulnerabilities not accepted, 1 stale"},
		{"only imported needs no entry, so an entry for it is stale", "GO-1 * x\nGO-2 * x\n", "0 called vulnerabilities not accepted, 1 stale"},
		{"entry without reason is refused", "GO-1 *\n", "want `ID MODULE-DIR reason...`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "shared.json")
			if err := os.WriteFile(in, []byte(stream), 0o644); err != nil {
				t.Fatal(err)
			}
			acc := ""
			if tt.accepted != "" {
				acc = filepath.Join(dir, "accepted.txt")
				if err := os.WriteFile(acc, []byte(tt.accepted), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := run(acc, []string{in}, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestScanCountsCalledOnce(t *testing.T) {
	in := filepath.Join(t.TempDir(), "k8s_proof.json")
	// The same called vulnerability reached from two places is one finding.
	lines := strings.Split(strings.TrimSpace(stream), "\n")
	twice := strings.Join(append(lines, lines[3]), "\n")
	if err := os.WriteFile(in, []byte(twice), 0o644); err != nil {
		t.Fatal(err)
	}
	called, imported, err := scan(in, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(called) != 1 || called[0].id != "GO-1" || called[0].module != "k8s/proof" || imported != 1 {
		t.Errorf("got called %+v, imported %d; want GO-1 once in module k8s/proof, 1 imported", called, imported)
	}
	if want := "m/p.Run (p.go:3) reaches net/http.Serve"; called[0].example != want {
		t.Errorf("example: got %q, want %q", called[0].example, want)
	}
}
