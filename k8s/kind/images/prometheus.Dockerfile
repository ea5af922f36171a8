# Stand-in for prom/prometheus: Prometheus and promtool built from Prometheus'
# own Go module at the version the manifests name (build-bins.sh, prometheus/),
# laid out as the official image is: /bin/prometheus, /bin/promtool, user
# nobody, data in /prometheus. No web UI assets: the API, scraping, service
# discovery and rules are what the cluster uses. Context: the two binaries.
FROM carbuild-kind/distroless:root
ARG VERSION BIN_VERSION
LABEL org.opencontainers.image.version=${VERSION} carbuild.kind.bin-version=${BIN_VERSION}
COPY prometheus promtool /bin/
USER 65534:65534
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
