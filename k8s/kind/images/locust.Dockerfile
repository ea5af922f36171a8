# Stand-in for locustio/locust: Debian's python3-locust 2.12, entrypoint locust.
FROM carbuild-kind/debian:bookworm
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-locust \
 && rm -rf /var/lib/apt/lists/* && useradd -u 1000 -m locust
USER 1000:1000
WORKDIR /home/locust
ENTRYPOINT ["locust"]
