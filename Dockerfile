# bzzz image, built FROM scratch from a binary built on the host (there is no registry to pull a
# base image from). Build it with `docker/build-image.sh`, which assembles the context:
#   rootfs/app/bzzz                 the binary (release, debug info stripped)
#   rootfs/lib*/...                 the shared libraries `ldd` lists for it (glibc, libgcc_s, ...)
#   rootfs/etc/{passwd,group}       the unprivileged user bzzz (10001)
#   rootfs/app/config/config.yaml   a default config (docker/config.yaml); Swarm mounts bzzz_v2_config over it
#   data/                           an empty /app/data owned by 10001, so fresh volumes inherit the owner
FROM scratch

COPY rootfs/ /
COPY --chown=10001:10001 data/ /app/data/

ENV BZZZ_CONFIG=/app/config/config.yaml
WORKDIR /app
USER 10001:10001
VOLUME ["/app/data"]
# P2P (agents; bootstrap nodes listen on 9101-9103), agent API, health and /metrics.
EXPOSE 9000 8080 8081

# The image has no shell or curl: the binary asks its own health listener. Only an unhealthy node
# fails the check; a degraded one (a minority partition, replication below R) stays up, because
# restarting it would not repair anything and would churn the mesh.
HEALTHCHECK --interval=10s --timeout=5s --start-period=40s --retries=3 \
  CMD ["/app/bzzz", "health", "--local", "--fail-on", "unhealthy"]

ENTRYPOINT ["/app/bzzz"]
CMD ["run"]
