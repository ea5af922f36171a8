#!/bin/sh
# cni-node.sh: the offline node image's pod network (kindnetd, which Kind
# ships, is not on the module proxy). On each node, every 5 s: write a bridge
# CNI config for the node's podCIDR, route the other nodes' podCIDRs via their
# InternalIPs, and masquerade only traffic that leaves the pod network, so
# pod-to-pod traffic keeps its source IP (NetworkPolicies match on it).
set -u
: "${NODE_NAME:?}" "${CLUSTER_CIDR:=10.244.0.0/16}"
conf=/host/etc/cni/net.d/10-carbuild.conflist
while :; do
	cidr=$(kubectl get node "$NODE_NAME" -o jsonpath='{.spec.podCIDR}' 2>/dev/null || true)
	if [ -n "$cidr" ]; then
		want=$(printf '{"cniVersion":"0.4.0","name":"carbuild","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":false,"hairpinMode":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"%s"}]],"routes":[{"dst":"0.0.0.0/0"}]}},{"type":"portmap","capabilities":{"portMappings":true}}]}' "$cidr")
		if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
			printf '%s' "$want" >"$conf.tmp" && mv "$conf.tmp" "$conf"
			echo "cni-node: $NODE_NAME podCIDR $cidr"
		fi
		iptables -t nat -C POSTROUTING -s "$cidr" ! -d "$CLUSTER_CIDR" -j MASQUERADE 2>/dev/null ||
			iptables -t nat -A POSTROUTING -s "$cidr" ! -d "$CLUSTER_CIDR" -j MASQUERADE
	fi
	kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' 2>/dev/null |
		while read -r name podcidr addr _; do
			[ "$name" != "$NODE_NAME" ] && [ -n "$podcidr" ] && [ -n "$addr" ] || continue
			ip route replace "$podcidr" via "$addr" 2>/dev/null || echo "cni-node: route $podcidr via $addr failed"
		done
	sleep 5
done
