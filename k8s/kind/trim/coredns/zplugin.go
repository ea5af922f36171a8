// Replaces core/plugin/zplugin.go of github.com/coredns/coredns v1.12.1 in the
// stand-in's build (build-bins.sh): the plugins of kubeadm's default Corefile
// (errors, health, ready, kubernetes, prometheus = metrics, forward, cache,
// loop, reload, loadbalance) and log, hosts, rewrite for debugging, instead of
// all 53 upstream plugins; the cloud back ends (route53, azure, clouddns),
// etcd, dnstap and the tracers were most of the build's time.

package plugin

import (
	_ "github.com/coredns/caddy/onevent"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
)
