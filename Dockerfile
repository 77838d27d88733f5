# sunes-stream worker image: `docker build -t sunes-stream .`
# The entry point is the `sunes` command: `docker run sunes-stream worker`,
# `docker run sunes-stream report …`.

# Build stage: wheels for the project and its dependencies, with a compiler at hand for any
# dependency that has no wheel for this platform. Nothing of it reaches the runtime image.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY scripts/build_mypyc.py ./scripts/
COPY topics ./topics
COPY processors ./processors
COPY streams ./streams
COPY monitoring ./monitoring
COPY simulator ./simulator
# The wheels of the project and its dependencies; then the project's wheel again, processors/
# compiled by mypyc (setup.py; mypy only in this stage, at the dev extra's pin), with the
# dependencies installed so that mypy sees their types (orjson, msgspec) as make venv does.
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
    && pip install --no-cache-dir --no-index --find-links /wheels sunes-stream \
    && pip install --no-cache-dir "mypy==2.4.1" "setuptools>=77" \
    && rm /wheels/sunes_stream-*.whl \
    && SUNES_MYPYC_WHEEL=1 pip wheel --no-cache-dir --no-build-isolation --no-deps \
       --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels sunes-stream \
    && rm -rf /wheels

# Non-root, with a fixed uid so that volumes and Kubernetes' runAsNonRoot can rely on it.
RUN groupadd --system --gid 10001 sunes \
    && useradd --system --uid 10001 --gid sunes --home-dir /var/lib/sunes \
       --shell /usr/sbin/nologin sunes \
    && mkdir -p /var/lib/sunes \
    && chown sunes:sunes /var/lib/sunes
USER 10001:10001
WORKDIR /var/lib/sunes

# Defaults for a container: listen on every interface, keep RocksDB tables in the data
# directory (mount a volume there to keep state across container re-creation).
ENV SUNES_WEB_HOST=0.0.0.0 \
    SUNES_WEB_PORT=6066 \
    SUNES_DATA_DIR=/var/lib/sunes
EXPOSE 6066

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('SUNES_WEB_PORT', '6066'), timeout=4)"]

ENTRYPOINT ["sunes"]
CMD ["worker"]
