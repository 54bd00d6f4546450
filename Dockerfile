# Relay: one image for `relay worker` (the default), `relay sync CONNECTION` and the other commands.
# The default configuration ships inside the package; mount your own (written by `relay init`)
# at /config and set RELAY_CONFIG_DIR=/config to use it.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY connector ./connector
COPY crm_sandbox ./crm_sandbox
COPY jobs ./jobs
RUN python -m venv /opt/relay \
    && /opt/relay/bin/pip install ".[postgres]"

FROM python:3.11-slim
LABEL org.opencontainers.image.title="Relay" \
      org.opencontainers.image.description="CRM sync connector for RevOps teams (Salesforce, HubSpot)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/relay/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RELAY_DATABASE_URL=sqlite:////data/relay.db \
    RELAY_HUEY_SQLITE_FILE=/data/relay-huey.db
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home relay
COPY --from=build /opt/relay /opt/relay
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# Healthy when the store opens and passes its integrity check (and the configuration loads).
HEALTHCHECK --interval=60s --timeout=20s --start-period=30s --retries=3 \
    CMD ["relay", "runs", "list", "--limit", "1"]
ENTRYPOINT ["relay"]
CMD ["worker"]
