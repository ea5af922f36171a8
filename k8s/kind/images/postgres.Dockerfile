# Stand-in for postgres:15.x-alpine: Debian's PostgreSQL 15 with uid/gid 70
# (the official alpine image's postgres user, which the manifest runs as) and
# an entrypoint that does what the official one does with POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB and PGDATA.
FROM carbuild-kind/debian:bookworm
RUN groupadd -g 70 postgres && useradd -u 70 -g 70 -d /var/lib/postgresql -s /bin/sh postgres \
 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/lib/postgresql/15/bin/* /usr/local/bin/ \
 && mkdir -p /var/run/postgresql /var/lib/postgresql/data && chown -R 70:70 /var/run/postgresql /var/lib/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
USER 70:70
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
