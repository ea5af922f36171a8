// Command netpol enforces NetworkPolicies on the offline Kind cluster of
// `make test-kind`. It runs the policy engine kindnetd embeds,
// sigs.k8s.io/kube-network-policies, unchanged: that controller judges the
// first packet of every new connection in user space, from an NFQUEUE.
//
// Upstream diverts those packets with nftables' queue expression, which a
// kernel without CONFIG_NFT_QUEUE cannot load (the machines this project is
// tested on have none). The iptables NFQUEUE target (xt_NFQUEUE) feeds the
// same queue and those kernels have it, so this command installs the
// diversion with iptables instead and leaves the judging to upstream. The
// controller still tries its own nftables table and logs that it failed;
// nothing else depends on that table.
//
// The diversion (mangle POSTROUTING, so after DNAT and before masquerade:
// the addresses are the pods' own, as upstream's forward and postrouting
// hooks see them):
//
//	-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN   judged already
//	-m owner --uid-owner 0 -j RETURN                       the node's own root processes (kubelet probes), as upstream
//	-d POD_CIDR -j NFQUEUE --queue-num N                    into a pod
//	-s POD_CIDR -j NFQUEUE --queue-num N                    out of a pod
//
// Without --queue-bypass the kernel drops queued packets while nothing
// listens (upstream's default, fail closed).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

const chain = "CARBUILD-NETPOL"

func main() {
	var (
		podCIDR  = flag.String("pod-cidr", "10.244.0.0/16", "the cluster's pod network: connections into or out of it are judged")
		queueID  = flag.Int("nfqueue-id", 98, "the NFQUEUE the controller reads")
		nodeName = flag.String("hostname-override", "", "this node's name (default: the hostname)")
		metrics  = flag.String("metrics-bind-address", ":9080", "address of /metrics")
	)
	klog.InitFlags(nil)
	flag.Parse()
	if err := run(*podCIDR, *queueID, *nodeName, *metrics); err != nil {
		klog.ErrorS(err, "netpol")
		os.Exit(1)
	}
}

func run(podCIDR string, queueID int, nodeName, metricsAddr string) error {
	if _, _, err := net.ParseCIDR(podCIDR); err != nil {
		return fmt.Errorf("pod-cidr: %w", err)
	}
	if nodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		nodeName = h
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Same-node pod-to-pod traffic crosses the CNI bridge: only with this
	// set does it reach iptables at all.
	if err := os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("bridge-nf-call-iptables: %w", err)
	}

	cfg, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := networkpolicy.NewController(client,
		factory.Networking().V1().NetworkPolicies(),
		factory.Core().V1().Namespaces(),
		factory.Core().V1().Pods(),
		nil, nil, nil, nil,
		networkpolicy.Config{
			QueueID:  queueID,
			NodeName: nodeName,
			// NRI stays on as upstream runs it: containerd 1.6 has no NRI
			// socket, so its plugin only logs that it could not connect and
			// pod IPs come from the API server. (Off, v0.8.0 dereferences the
			// missing plugin for any address that is not a pod's.)
		})
	if err != nil {
		return err
	}

	if err := divert(podCIDR, queueID); err != nil {
		undivert()
		return err
	}
	defer undivert()
	klog.InfoS("diverting new connections of the pod network to the policy engine", "podCIDR", podCIDR, "queue", queueID)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	go func() { klog.ErrorS(http.ListenAndServe(metricsAddr, mux), "metrics server") }()

	factory.Start(ctx.Done())
	return ctrl.Run(ctx)
}

// divert installs the chain of the package comment, replacing any left by
// an earlier run of this command on the node.
func divert(podCIDR string, queueID int) error {
	undivert()
	q := strconv.Itoa(queueID)
	for _, args := range [][]string{
		{"-N", chain},
		{"-A", chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
		{"-A", chain, "-m", "owner", "--uid-owner", "0", "-j", "RETURN"},
		{"-A", chain, "-d", podCIDR, "-j", "NFQUEUE", "--queue-num", q},
		{"-A", chain, "-s", podCIDR, "-j", "NFQUEUE", "--queue-num", q},
		{"-I", "POSTROUTING", "1", "-j", chain},
	} {
		if err := iptables(args...); err != nil {
			return err
		}
	}
	return nil
}

// undivert removes the chain; errors mean it was not there.
func undivert() {
	for iptables("-D", "POSTROUTING", "-j", chain) == nil {
	}
	_ = iptables("-F", chain)
	_ = iptables("-X", chain)
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "-t", "mangle"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables -t mangle %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
