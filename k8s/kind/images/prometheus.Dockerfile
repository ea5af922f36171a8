# Stand-in for prom/prometheus: Debian's Prometheus 2.42 (the manifest's
# config and rules pass `promtool check` of that version), same entrypoint,
# user nobody.
FROM carbuild-kind/debian:bookworm
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* && ln -s /usr/bin/prometheus /bin/prometheus 2>/dev/null || true
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
