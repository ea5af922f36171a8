# The Kind node image, assembled offline: kind's own node files (entrypoint,
# systemd units, containerd config) from the kind Go module, containerd/runc/CNI
# plugins from Debian, Kubernetes binaries built from Go modules (build-bins.sh).
# Context: a directory prepared by images.sh (kind/ = images/base/files, bin/).
FROM carbuild-kind/debian:bookworm
# Packages first (kind's containerd config must not meet the package's conffile).
RUN DEBIAN_FRONTEND=noninteractive apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      systemd containerd runc containernetworking-plugins \
      conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
      libseccomp2 pigz e2fsprogs bash ca-certificates curl jq procps socat \
 && rm -rf /var/lib/apt/lists/*
COPY kind/usr/local/bin/ /usr/local/bin/
COPY kind/kind/ /kind/
COPY kind/etc/ /etc/
RUN chmod 0755 /usr/local/bin/* /kind/bin/* \
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
 && ln -sf /usr/lib/systemd/systemd /sbin/init \
 && mkdir -p /opt/cni/bin /etc/kubernetes/manifests /kind/manifests \
 && for p in bridge host-local loopback portmap ptp; do ln -sf /usr/lib/cni/$p /opt/cni/bin/$p; done \
 && ln -sf /usr/bin/containerd /usr/local/bin/containerd \
 && ln -sf /usr/bin/containerd-shim-runc-v2 /usr/local/bin/containerd-shim-runc-v2 \
 && ln -sf /usr/sbin/runc /usr/local/sbin/runc
# The root of our machines lacks CAP_SYS_RESOURCE: containerd may not set a
# negative oom_score_adj (every pod sandbox would fail without this), and the
# base spec drops the rlimits runc may not raise; systemd may not lower
# containerd's OOM score either.
ARG PAUSE_IMAGE
RUN sed -i -e "s/restrict_oom_score_adj = false/restrict_oom_score_adj = true/" -e "s|sandbox_image = .*|sandbox_image = \"${PAUSE_IMAGE}\"|" /etc/containerd/config.toml \
 && sed -i '/^OOMScoreAdjust=/d' /etc/systemd/system/containerd.service \
 && ctr oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
 && systemctl mask systemd-binfmt.service
COPY bin/ /usr/bin/
COPY manifests/ /kind/manifests/
COPY version /kind/version
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]
