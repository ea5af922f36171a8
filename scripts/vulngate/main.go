// Command vulngate reads the JSON output of govulncheck (one file per
// module) and decides whether the lint lane passes: it fails on every
// vulnerability that the code calls (a finding whose trace starts at a
// vulnerable function), unless that vulnerability is listed, for that
// module (or * for every module: the standard library's, which only a
// newer Go toolchain fixes), in the accepted file with its reason. Vulnerabilities only
// imported or required, not called, are counted but do not fail, as with
// govulncheck's own exit code.
//
// An accepted entry that no scanned module reports any more also fails,
// so the list cannot outlive the fix it waits for.
//
//	go run ./scripts/vulngate -accepted scripts/vuln-accepted.txt shared.json catalog.json ...
//
// It lives outside the Go workspace and imports only the standard library
// (run it with GOWORK=off go run scripts/vulngate/main.go).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// frame and the message types below are the parts of govulncheck's JSON
// protocol (golang.org/x/vuln/internal/govulncheck, protocol v1.0.0) that
// the gate reads.
type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
	} `json:"position"`
}

type message struct {
	Config *struct {
		ScannerVersion string `json:"scanner_version"`
		DB             string `json:"db"`
		DBLastModified string `json:"db_last_modified"`
		GoVersion      string `json:"go_version"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string   `json:"osv"`
		FixedVersion string   `json:"fixed_version"`
		Trace        []*frame `json:"trace"`
	} `json:"finding"`
}

// called is one vulnerability that one module's code reaches.
type called struct {
	id, module, vulnModule, found, fixed, summary string
	example                                       string // the entry point of one trace
}

func main() {
	accepted := flag.String("accepted", "", "file of accepted findings: lines `ID MODULE-DIR reason...`, MODULE-DIR * for every module (# comments)")
	flag.Parse()
	if err := run(*accepted, flag.Args(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vulngate:", err)
		os.Exit(1)
	}
}

func run(acceptedFile string, files []string, out io.Writer) error {
	if len(files) == 0 {
		return errors.New("no govulncheck JSON files given")
	}
	acc, err := readAccepted(acceptedFile)
	if err != nil {
		return err
	}
	var found []called
	imported := 0
	for _, f := range files {
		c, n, err := scan(f, out)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		found = append(found, c...)
		imported += n
	}
	used := map[string]bool{}
	failed := 0
	for _, c := range found {
		key := c.id + " " + c.module
		reason, ok := acc[key]
		if !ok {
			key = c.id + " *"
			reason, ok = acc[key]
		}
		verdict := "FAIL    "
		if ok {
			used[key] = true
			verdict = "accepted"
		} else {
			failed++
		}
		fmt.Fprintf(out, "%s %s in %s: %s@%s, fixed in %s: %s\n         e.g. %s\n", verdict, c.id, c.module, c.vulnModule, c.found, c.fixed, c.summary, c.example)
		if ok {
			fmt.Fprintf(out, "         accepted because: %s\n", reason)
		}
	}
	var stale []string
	for key := range acc {
		if !used[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, key := range stale {
		fmt.Fprintf(out, "FAIL     %s is accepted in %s but no longer found: remove the line\n", key, acceptedFile)
	}
	fmt.Fprintf(out, "vulngate: %d called (%d accepted), %d only imported or required (not called, not failing)\n", len(found), len(found)-failed, imported)
	if failed+len(stale) > 0 {
		return fmt.Errorf("%d called vulnerabilities not accepted, %d stale accepted entries", failed, len(stale))
	}
	return nil
}

// readAccepted returns reason by "ID MODULE-DIR".
func readAccepted(path string) (map[string]string, error) {
	acc := map[string]string{}
	if path == "" {
		return acc, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: want `ID MODULE-DIR reason...`, got %q", path, n, line)
		}
		acc[fields[0]+" "+fields[1]] = strings.Join(fields[2:], " ")
	}
	return acc, sc.Err()
}

// scan reads one module's govulncheck JSON stream (named MODULE-DIR.json,
// with / in the directory written as _) and returns the vulnerabilities the
// code calls, one per ID, and the number of other IDs found.
func scan(path string, out io.Writer) ([]called, int, error) {
	module := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(path), ".json"), "_", "/")
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	summaries := map[string]string{}
	byID := map[string]*called{}
	other := map[string]bool{}
	var order []string
	dec := json.NewDecoder(f)
	for {
		var m message
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return nil, 0, err
		}
		switch {
		case m.Config != nil:
			fmt.Fprintf(out, "%-20s govulncheck %s, %s, database %s (modified %s)\n", module, m.Config.ScannerVersion, m.Config.GoVersion, m.Config.DB, m.Config.DBLastModified)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			id, tr := m.Finding.OSV, m.Finding.Trace
			// The trace runs from the vulnerable symbol to our code; only a
			// finding at function level means the code calls it.
			if tr[0].Function == "" {
				other[id] = true
				continue
			}
			if byID[id] == nil {
				byID[id] = &called{id: id, module: module, vulnModule: tr[0].Module, found: tr[0].Version, fixed: m.Finding.FixedVersion, example: describe(tr)}
				order = append(order, id)
			}
		}
	}
	var cs []called
	for _, id := range order {
		c := byID[id]
		c.summary = summaries[id]
		delete(other, id)
		cs = append(cs, *c)
	}
	return cs, len(other), nil
}

// describe names the entry point of a trace (its last frame, in our code)
// and the vulnerable symbol it reaches.
func describe(tr []*frame) string {
	name := func(fr *frame) string {
		s := fr.Package + "." + fr.Function
		if fr.Receiver != "" {
			s = fr.Package + "." + strings.TrimPrefix(fr.Receiver, "*") + "." + fr.Function
		}
		if fr.Position != nil {
			s += fmt.Sprintf(" (%s:%d)", filepath.Base(fr.Position.Filename), fr.Position.Line)
		}
		return s
	}
	return name(tr[len(tr)-1]) + " reaches " + name(tr[0])
}
