# Stand-in for gcr.io/distroless/static-debian12 (root) and :nonroot (uid
# 65532): no shell, no package manager — passwd/group, CA certificates, /tmp.
FROM carbuild-kind/debian:bookworm AS src
RUN mkdir -p /out/etc/ssl/certs /out/tmp /out/home/nonroot /out/root \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/out/etc/passwd \
 && printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >/out/etc/group \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && chmod 1777 /out/tmp && chown 65532:65532 /out/home/nonroot
FROM scratch AS root
COPY --from=src /out/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
FROM root AS nonroot
USER 65532:65532
WORKDIR /home/nonroot
