// Package testdns is a tiny DNS server for tests: it answers every A query
// with fixed addresses, like the DNS of a Kubernetes headless Service, so a
// gRPC target "dns://<addr>/name:port" balances over several local
// instances.
package testdns

import (
	"encoding/binary"
	"net"
	"testing"
)

// Serve runs a tiny DNS server on loopback that answers every A query
// with ips (and every other query with no records), like the DNS of a
// Kubernetes headless Service with one address per pod. A gRPC target
// "dns://<addr>/anything:<port>" then balances over every instance, which
// is how the gateway and pricing reach several catalog or pricing pods. It
// returns the server's address and stops at cleanup.
func Serve(t testing.TB, ips ...net.IP) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := answer(buf[:n], ips); resp != nil {
				_, _ = pc.WriteTo(resp, addr)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// answer builds the response to one query (RFC 1035 §4.1), or nil when
// the packet is not a query with one question.
func answer(q []byte, ips []net.IP) []byte {
	if len(q) < 12 || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// Walk the question's name (labels up to the root), then type and class.
	i := 12
	for i < len(q) && q[i] != 0 {
		if q[i]&0xc0 != 0 {
			return nil
		}
		i += int(q[i]) + 1
	}
	i++ // the root label
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]

	var answers []net.IP
	if qtype == 1 { // A
		answers = ips
	}
	resp := make([]byte, 12, 12+len(question)+16*len(answers))
	copy(resp[0:2], q[0:2])                       // id
	binary.BigEndian.PutUint16(resp[2:4], 0x8580) // QR, AA, RD, RA; no error
	binary.BigEndian.PutUint16(resp[4:6], 1)
	binary.BigEndian.PutUint16(resp[6:8], uint16(len(answers)))
	resp = append(resp, question...)
	for _, ip := range answers {
		rr := []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4} // name → question, A, IN, TTL 5 s, 4 bytes
		resp = append(append(resp, rr...), ip.To4()...)
	}
	return resp
}
