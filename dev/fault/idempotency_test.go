package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// uuidV4 is the shape of an order id: a random (version 4, RFC 4122
// variant) UUID, 122 random bits.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestExactlyOnce races many retries of one idempotency key over REST: one
// order is stored, every retry gets it back; the key reused with another
// body is a 409; totals, lines and status agree in the database.
func TestExactlyOnce(t *testing.T) {
	s := startStack(t, stackConfig())
	const retries = 50

	type answer struct {
		status int
		id     string
		body   string
	}
	race := func(c call) []answer {
		out := make([]answer, retries)
		var wg sync.WaitGroup
		start := make(chan struct{})
		client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: retries}}
		defer client.CloseIdleConnections()
		for i := range retries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest(c.method, s.GatewayURL+c.path, strings.NewReader(c.body))
				req.Header.Set("Content-Type", "application/json")
				for k, v := range c.headers {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					out[i] = answer{body: err.Error()}
					return
				}
				defer resp.Body.Close()
				body := readAll(resp)
				out[i] = answer{status: resp.StatusCode, body: body, id: jsonField(body, "id")}
				if out[i].id == "" {
					out[i].id = jsonField(body, "pedidoId")
				}
			}()
		}
		close(start)
		wg.Wait()
		return out
	}

	t0 := time.Now()
	key := randomKey(10)
	v1 := race(orderCall(key))
	ids := map[string]int{}
	for i, a := range v1 {
		if a.status != http.StatusOK {
			t.Errorf("retry %d: status %d, want 200: %s", i, a.status, a.body)
			continue
		}
		ids[a.id]++
	}
	if len(ids) != 1 {
		t.Fatalf("%d concurrent retries of one key answered %d different order ids, want 1: %v", retries, len(ids), ids)
	}
	var orderID string
	for id := range ids {
		orderID = id
	}
	if !uuidV4.MatchString(orderID) {
		t.Errorf("order id %q is not a random (v4) UUID", orderID)
	}

	// The same key with a different body is a conflict, not a replay.
	other := orderCall(key)
	other.body = strings.Replace(other.body, `"quantity":2`, `"quantity":3`, 1)
	other.body = strings.Replace(other.body, "744500", "789500", 1)
	conflicts := race(other)
	for i, a := range conflicts {
		if a.status != http.StatusConflict || jsonField(a.body, "status") != "ALREADY_EXISTS" || !strings.Contains(a.body, "idempotency key") {
			t.Errorf("reused key, other body, call %d: %d %s, want 409 ALREADY_EXISTS saying why", i, a.status, a.body)
			break
		}
	}

	// The seed-compatible /pagar with an Idempotency-Key header: one order too.
	pkey := randomKey(10)
	pagar := race(call{kind: "pagar", method: "POST", path: "/pagar", headers: map[string]string{"Idempotency-Key": pkey},
		body: `{"itens":[{"peca":{"id":"7","nome":"Chassi","valor":1},"quantidade":1}],"valor_total":8020}`})
	pids := map[string]int{}
	for i, a := range pagar {
		if a.status != http.StatusOK {
			t.Errorf("/pagar retry %d: %d %s", i, a.status, a.body)
			continue
		}
		pids[a.id]++
	}
	if len(pids) != 1 {
		t.Errorf("%d concurrent /pagar with one Idempotency-Key answered %d order ids, want 1: %v", retries, len(pids), pids)
	}

	// The database agrees: one row per key, lines and totals consistent.
	db := connect(t, s.DatabaseURL)
	for _, k := range []string{key, pkey} {
		var n int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM orders.orders WHERE idempotency_key = $1`, k).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("key %s: %d orders stored, want 1", k, n)
		}
	}
	checkOrders(t, db, map[string]string{key: orderID})
	var gotTotal int64
	if err := db.QueryRow(context.Background(), `SELECT total_minor FROM orders.orders WHERE id = $1`, orderID).Scan(&gotTotal); err != nil {
		t.Fatal(err)
	}
	if gotTotal != orderTotal {
		t.Errorf("stored total %d, want %d", gotTotal, orderTotal)
	}
	t.Logf("exactly-once: %d concurrent retries → %d order; %d conflicting retries → 409; %d /pagar retries → %d order; took %s",
		retries, len(ids), retries, retries, len(pids), time.Since(t0).Round(time.Millisecond))
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil || b.Len() > 1<<20 {
			return b.String()
		}
	}
}

// connect opens a database connection closed at cleanup.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// checkOrders checks every stored order: status CONFIRMED, total = subtotal
// + shipping, subtotal = Σ line totals, line total = unit price × quantity,
// lines numbered 1..n; and that each idempotency key in want maps to the
// given order id (the one the client was answered).
func checkOrders(t *testing.T, db *pgx.Conn, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Query(ctx, `
SELECT o.id::text, o.idempotency_key, o.status, o.subtotal_minor, o.shipping_minor, o.total_minor,
       count(l.line_no), coalesce(sum(l.line_total_minor), 0),
       bool_and(l.line_total_minor = l.unit_price_minor * l.quantity),
       coalesce(max(l.line_no), 0)
FROM orders.orders o LEFT JOIN orders.order_lines l ON l.order_id = o.id
GROUP BY o.id`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id, key, status           string
		subtotal, shipping, total int64
		lines                     int
		linesSum                  int64
		linesOK                   *bool
		maxLine                   int
	}
	stored := map[string]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.key, &r.status, &r.subtotal, &r.shipping, &r.total, &r.lines, &r.linesSum, &r.linesOK, &r.maxLine); err != nil {
			t.Fatal(err)
		}
		stored[r.key] = r
		switch {
		case r.status != "CONFIRMED":
			t.Errorf("order %s: status %q", r.id, r.status)
		case r.total != r.subtotal+r.shipping:
			t.Errorf("order %s: total %d != subtotal %d + shipping %d", r.id, r.total, r.subtotal, r.shipping)
		case r.lines == 0 || r.linesSum != r.subtotal || r.linesOK == nil || !*r.linesOK || r.maxLine != r.lines:
			t.Errorf("order %s: %d lines summing to %d (subtotal %d), lines consistent %v, max line_no %d", r.id, r.lines, r.linesSum, r.subtotal, r.linesOK, r.maxLine)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for key, id := range want {
		r, ok := stored[key]
		switch {
		case !ok:
			t.Errorf("order %s (key %s) was confirmed to the client but is not stored", id, key)
		case r.id != id:
			t.Errorf("key %s: client got order %s, database holds %s", key, id, r.id)
		}
	}
}

// retryFailedOrders re-sends every failed order of a run with its key, after
// the fault: each must now answer 200, with the id its key was first answered
// if it was; acked (key → id, from orderIDs) gains the answers. It returns how
// many orders it re-sent.
func retryFailedOrders(t *testing.T, gatewayURL string, rs []result, acked map[string]string) int {
	t.Helper()
	retried := 0
	client := &http.Client{Timeout: 10 * time.Second}
	for _, r := range rs {
		if r.kind != "order" || r.ok() {
			continue
		}
		retried++
		resp, err := client.Post(gatewayURL+r.path, "application/json", strings.NewReader(r.call.body))
		if err != nil {
			t.Fatalf("retry order %s: %v", r.key, err)
		}
		body := readAll(resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("retry of order %s: %d %s", r.key, resp.StatusCode, body)
			continue
		}
		if prev, ok := acked[r.key]; ok && prev != jsonField(body, "id") {
			t.Errorf("key %s: first answered %s, its retry %s", r.key, prev, jsonField(body, "id"))
		}
		acked[r.key] = jsonField(body, "id")
	}
	return retried
}

// storedOncePerKey checks every stored order (checkOrders) and that the
// database holds exactly one order per key in acked; it returns the count.
func storedOncePerKey(t *testing.T, db *pgx.Conn, acked map[string]string) int {
	t.Helper()
	checkOrders(t, db, acked)
	var stored int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM orders.orders`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(acked) {
		t.Errorf("%d orders stored for %d keys: an order was stored twice or without its client", stored, len(acked))
	}
	return stored
}

// orderIDs extracts key → order id of the successful orders of a run, and
// fails the test if one key got two different ids.
func orderIDs(t *testing.T, rs []result) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range rs {
		if r.kind != "order" || !r.ok() {
			continue
		}
		var o struct {
			ID    string `json:"id"`
			Total struct {
				MinorUnits string `json:"minorUnits"`
			} `json:"total"`
		}
		if err := json.Unmarshal([]byte(r.body), &o); err != nil || o.ID == "" {
			t.Errorf("order answer without an id: %s", r.body)
			continue
		}
		if prev, ok := out[r.key]; ok && prev != o.ID {
			t.Errorf("key %s answered two orders: %s and %s", r.key, prev, o.ID)
		}
		if o.Total.MinorUnits != fmt.Sprint(orderTotal) {
			t.Errorf("order %s: total %s, want %d", o.ID, o.Total.MinorUnits, orderTotal)
		}
		out[r.key] = o.ID
	}
	return out
}
