// Package check keeps the observability files in step with the binaries: it
// extracts the PromQL of the Prometheus rules and the Grafana dashboard, the
// metric table of docs/metrics.md, and the metric families a running service
// exposes, so the tests of this module can compare them.
//
// The module stays out of go.work (it pulls in Prometheus' PromQL parser,
// which the services must not depend on); run it with GOWORK=off.
package check
