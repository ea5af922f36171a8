# Debian with network tools and a Go binary: kube-proxy (needs iptables,
# conntrack) and the pod-network DaemonSet (iproute2, iptables, kubectl).
FROM carbuild-kind/debian:bookworm
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iptables iproute2 conntrack ipset kmod \
 && rm -rf /var/lib/apt/lists/*
ARG SRC DEST
COPY . /ctx/
RUN cp /ctx/* /usr/local/bin/ && rm -rf /ctx
