# Stand-in for registry:2 (what ctlptl runs as ctlptl-registry): Debian's
# docker-registry (distribution 2.8), serving :5000 from /var/lib/registry.
FROM carbuild-kind/debian:bookworm
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/docker/registry /var/lib/registry \
 && printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: true\nhttp:\n  addr: :5000\n' >/etc/docker/registry/config.yml
EXPOSE 5000
ENTRYPOINT ["/usr/bin/docker-registry", "serve"]
CMD ["/etc/docker/registry/config.yml"]
