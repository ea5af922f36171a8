package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/carbuild/carbuild/loadtest/internal/reference"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
)

// relayEnv, set in the environment, turns this program into the relay series'
// server (reference.Relay) instead of the bench: "<pricing address> <parts
// URL>". The bench starts its own binary that way, so that the relay is a
// process of its own whose CPU is measured apart from the load generator's.
const relayEnv = "CARBUILD_BENCH_RELAY"

// relayWindowBytes is grpcclient.WindowBytes, the services' stream window
// (not imported: that package would bring its metrics' dependencies).
const relayWindowBytes = 1 << 20

// relayProc is a running relay.
type relayProc struct {
	url string
	pid int
	cmd *exec.Cmd
}

// startRelay starts the relay in front of pricingAddr, serving the parts page
// fetched from partsURL, and waits until it listens.
func startRelay(ctx context.Context, pricingAddr, partsURL string) (*relayProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), relayEnv+"="+pricingAddr+" "+partsURL)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the relay: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	p := &relayProc{pid: cmd.Process.Pid, cmd: cmd}
	select {
	case u, ok := <-line:
		if !ok || !strings.HasPrefix(u, "http://") {
			_ = p.stop()
			return nil, fmt.Errorf("the relay did not start (it printed %q)", u)
		}
		p.url = u
		return p, nil
	case <-ctx.Done():
		_ = p.stop()
		return nil, ctx.Err()
	}
}

func (p *relayProc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	err := p.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
		return nil
	}
	return err
}

// serveRelay is the relay process: it prints its URL on the first line of
// its output and serves until SIGTERM or SIGINT.
func serveRelay(spec string) error {
	pricingAddr, partsURL, ok := strings.Cut(spec, " ")
	if !ok {
		return fmt.Errorf("%s=%q: want \"<pricing address> <parts URL>\"", relayEnv, spec)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	parts, err := fetchBody(ctx, partsURL)
	if err != nil {
		return err
	}
	// The static flow-control windows of the services' connections
	// (shared/grpcclient: no BDP pings), so that the floor is not raised by
	// a cost the gateway does without; none of their interceptors.
	conn, err := grpc.NewClient(pricingAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStaticStreamWindowSize(relayWindowBytes), grpc.WithStaticConnWindowSize(2*relayWindowBytes))
	if err != nil {
		return err
	}
	defer conn.Close()
	srv, err := reference.Serve(reference.Relay(pricingv1.NewPricingServiceClient(conn), parts))
	if err != nil {
		return err
	}
	fmt.Println(srv.URL)
	<-ctx.Done()
	return srv.Close()
}

func fetchBody(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
}
