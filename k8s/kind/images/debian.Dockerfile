# Shared tail of the Debian base: the security and updates suites.
FROM carbuild-kind/debian-rootfs:bookworm
RUN printf '%s\n' 'deb http://deb.debian.org/debian bookworm main' \
      'deb http://deb.debian.org/debian bookworm-updates main' \
      'deb http://deb.debian.org/debian-security bookworm-security main' >/etc/apt/sources.list \
 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
CMD ["/bin/bash"]
