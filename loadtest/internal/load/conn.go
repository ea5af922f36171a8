package load

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// conn is one HTTP/1.1 keep-alive connection of the open model, used by one
// goroutine for one request at a time: it writes the request and reads the
// answer itself. net/http's Transport (which vegeta drives) hands every request
// to a writer goroutine and every answer back from a reader goroutine, and
// vegeta adds a worker and a results channel: four wake-ups of the generator
// per request, where this takes one (the answer's). On a machine whose CPUs the
// generator shares with the stack, that is CPU the stack gets back. The
// answer is parsed by net/http itself (http.ReadResponse), so status, headers,
// Content-Length and chunked bodies are read as any Go client reads them.
type conn struct {
	dial    func(addr string) (net.Conn, error)
	timeout time.Duration // per request, write to last body byte; 0: none
	nc      net.Conn      // nil until the first request, and after an error
	host    string        // what nc is connected to
	br      *bufio.Reader
	bw      *bufio.Writer
	used    bool // nc has answered a request already
}

// errNothingRead marks a reused connection that closed before answering: the
// server closed it while idle, and the request is sent again on a new one
// (net/http's Transport does the same).
var errNothingRead = errors.New("connection closed before an answer")

// do sends tgt and returns the result, as vegeta reports one.
func (c *conn) do(tgt *vegeta.Target) *vegeta.Result {
	res := &vegeta.Result{Method: tgt.Method, URL: tgt.URL, Timestamp: time.Now()}
	err := c.roundTrip(tgt, res)
	if errors.Is(err, errNothingRead) {
		err = c.roundTrip(tgt, res)
	}
	res.Latency = time.Since(res.Timestamp)
	if err != nil {
		res.Error = err.Error()
		c.close()
	}
	return res
}

func (c *conn) roundTrip(tgt *vegeta.Target, res *vegeta.Result) error {
	u, err := url.Parse(tgt.URL)
	if err != nil {
		return err
	}
	if u.Scheme != "http" {
		return fmt.Errorf("the open model speaks plain HTTP/1.1, not %q", u.Scheme)
	}
	if c.nc != nil && c.host != u.Host {
		c.close()
	}
	reused := c.nc != nil && c.used
	if c.nc == nil {
		c.host = u.Host
		if c.nc, err = c.dial(u.Host); err != nil {
			c.nc = nil
			return err
		}
		c.br, c.bw, c.used = bufio.NewReaderSize(c.nc, 16<<10), bufio.NewWriterSize(c.nc, 4<<10), false
	}
	if c.timeout > 0 {
		if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
			return err
		}
	}
	writeRequest(c.bw, tgt, u)
	if err := c.bw.Flush(); err != nil {
		c.close()
		if reused {
			return errNothingRead
		}
		return err
	}
	if _, err := c.br.Peek(1); err != nil { // the answer's first byte
		c.close()
		if reused && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			return errNothingRead
		}
		return err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: tgt.Method})
	if err != nil {
		c.close()
		return err
	}
	c.used = true
	if resp.ContentLength >= 0 {
		res.Body = make([]byte, resp.ContentLength)
		_, err = io.ReadFull(resp.Body, res.Body)
	} else {
		res.Body, err = io.ReadAll(resp.Body)
	}
	resp.Body.Close()
	res.Code = uint16(resp.StatusCode)
	res.Headers = resp.Header
	if err != nil {
		return err
	}
	if resp.Close {
		c.close()
	}
	return nil
}

// writeRequest writes tgt as an HTTP/1.1 request with a Content-Length.
func writeRequest(w *bufio.Writer, tgt *vegeta.Target, u *url.URL) {
	w.WriteString(tgt.Method)
	w.WriteByte(' ')
	w.WriteString(u.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(u.Host)
	w.WriteString("\r\n")
	for k, vs := range tgt.Header {
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if len(tgt.Body) > 0 || tgt.Method == http.MethodPost || tgt.Method == http.MethodPut || tgt.Method == http.MethodPatch {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.Itoa(len(tgt.Body)))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(tgt.Body)
}

func (c *conn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}
