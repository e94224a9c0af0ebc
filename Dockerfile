# raftis in a scratch image: just the static binary (built on the host by docker/build.sh, since no
# Rust image can be pulled). Nothing here pulls from a registry: no `syntax` line, FROM scratch.
#
#   docker/build.sh                      # cargo static build + docker build -t raftis:latest
#
# Every `raftis server` flag is also an environment variable (RAFTIS_ID, RAFTIS_PEERS,
# RAFTIS_ANNOUNCE, ...); see docker-compose.yml for a three-node cluster.
FROM scratch

COPY target/docker/x86_64-unknown-linux-gnu/release/raftis /raftis

# Listen on every interface of the container; keep the Raft log and snapshots in the volume.
ENV RAFTIS_BIND=0.0.0.0 \
    RAFTIS_PORT=6379 \
    RAFTIS_DIR=/data \
    NO_COLOR=1

# An unprivileged user owns /data; a fresh named volume mounted there takes over that ownership.
COPY --chown=65532:65532 target/docker/empty-data /data
USER 65532:65532
WORKDIR /data
VOLUME /data

# 6379: clients (RESP); 7379: HTTP (/metrics, /health, /ready: client port + 1000);
# 16379: the Raft bus between nodes (client port + 10000).
EXPOSE 6379 7379 16379

# No shell, curl or redis-cli in the image: the binary checks itself (exits 0 if the node answers
# PING and its HTTP /ready answers 200: it knows a leader and is caught up).
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=3 CMD ["/raftis", "health", "--ready"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["/raftis"]
CMD ["server"]
