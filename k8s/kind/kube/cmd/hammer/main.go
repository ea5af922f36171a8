// Command hammer drives closed-loop load for the autoscale check of
// `make test-kind`: C connections send one request after another to URL for
// D (or until SIGINT/SIGTERM), then it prints "requests failed". Locust's shoppers think for seconds
// between steps, so they never load a service enough to scale it; the HPA
// check needs CPU well above the pods' requests, which this gives.
//
//	hammer -c 32 -d 150s -body '{"items":[{"partId":"1","quantity":1}]}' http://localhost:8000/v1/quotes
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	conns := flag.Int("c", 32, "connections")
	dur := flag.Duration("d", time.Minute, "duration")
	body := flag.String("body", "", "JSON body: POST it (default: GET)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: hammer [-c N] [-d D] [-body JSON] URL")
		os.Exit(2)
	}
	url := flag.Arg(0)
	// SIGINT or SIGTERM ends the run early, with the counts printed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conns}}
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				method, rd := http.MethodGet, io.Reader(nil)
				if *body != "" {
					method, rd = http.MethodPost, bytes.NewBufferString(*body)
				}
				req, _ := http.NewRequestWithContext(ctx, method, url, rd)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return // the run ended mid-request: not counted
				}
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Println(sent.Load(), failed.Load())
}
