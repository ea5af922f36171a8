// Replaces plugins/plugins.go of github.com/prometheus/prometheus v0.305.0
// (Prometheus v3.5.0) in the stand-in's build (build-bins.sh): the service
// discoveries the cluster's configuration can use (kubernetes; dns; file and
// http come with plugins/minimum.go) instead of all 25, whose cloud SDKs
// (gce, openstack, envoy's xds, docker, consul, nomad...) were most of the
// build's time.

package plugins

import (
	_ "github.com/prometheus/prometheus/discovery/dns"        // Register dns plugin.
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // Register kubernetes plugin.
)
