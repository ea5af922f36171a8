package pricing

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/pricing/internal/money"
	"github.com/carbuild/carbuild/shared/errs"
)

// Metrics are the business counters of pricing.
type Metrics struct {
	quotes     *prometheus.CounterVec
	orders     *prometheus.CounterVec
	orderValue prometheus.Histogram
}

// NewMetrics registers the business metrics on reg, every label value
// initialised to zero.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		quotes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carbuild_quotes_total",
			Help: "Quotes computed, by outcome (ok, invalid, not_found, error).",
		}, []string{"outcome"}),
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carbuild_orders_total",
			Help: "Order requests, by status (confirmed, replayed, price_changed, conflict, invalid, error).",
		}, []string{"status"}),
		orderValue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "carbuild_order_value_reais",
			Help:    "Totals of confirmed orders, in reais.",
			Buckets: []float64{50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000},
		}),
	}
	reg.MustRegister(m.quotes, m.orders, m.orderValue)
	for _, o := range []string{"ok", "invalid", "not_found", "error"} {
		m.quotes.WithLabelValues(o)
	}
	for _, s := range []string{"confirmed", "replayed", "price_changed", "conflict", "invalid", "error"} {
		m.orders.WithLabelValues(s)
	}
	return m
}

func (m *Metrics) quoted(err error) {
	if m == nil {
		return
	}
	m.quotes.WithLabelValues(quoteOutcome(err)).Inc()
}

func (m *Metrics) ordered(o Order, replayed bool, err error) {
	if m == nil {
		return
	}
	switch {
	case err == nil && replayed:
		m.orders.WithLabelValues("replayed").Inc()
	case err == nil:
		m.orders.WithLabelValues("confirmed").Inc()
		m.orderValue.Observe(money.ToReais(o.Quote.Total))
	case errors.Is(err, errs.FailedPrecondition):
		m.orders.WithLabelValues("price_changed").Inc()
	case errors.Is(err, errs.Conflict):
		m.orders.WithLabelValues("conflict").Inc()
	case errors.Is(err, errs.InvalidArgument), errors.Is(err, errs.NotFound), errors.Is(err, errs.Unauthenticated):
		m.orders.WithLabelValues("invalid").Inc()
	default:
		m.orders.WithLabelValues("error").Inc()
	}
}

func quoteOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, errs.InvalidArgument):
		return "invalid"
	case errors.Is(err, errs.NotFound):
		return "not_found"
	default:
		return "error"
	}
}
