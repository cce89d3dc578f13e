# syntax=docker/dockerfile:1
#
# One image for every Encore process: `encore topics create`, `encore flow`, `encore serve`, ...
# The default command serves the API; docker-compose.yml picks the subcommand per service.
#
#   docker build -t encore .
#   docker run --rm -p 8000:8000 -e ENCORE_KAFKA_BOOTSTRAP=... -e ENCORE_REDIS_URL=... encore

# An exact version: a rebuild next month starts from the same Python (bump it deliberately).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---- build: install the project and its runtime dependencies into a virtualenv --------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# The locked runtime dependencies first (requirements.lock: exact versions, every file's hash;
# runtime + the `otel` extra, neither `dev` nor `local`), so this layer stays cached while only the
# code changes and two builds a month apart install the same packages. `make lock` refreshes it.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# Then the project itself, without resolving anything again.
COPY . .
RUN pip install --no-deps . \
    && pip check \
    && encore --help > /dev/null

# ---- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="encore" \
      org.opencontainers.image.description="Real-time feedback engine for music recommendation" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENCORE_DATA_DIR=/data

# A fixed, unprivileged uid; /data (flow recovery snapshots) belongs to it, so an empty named volume
# mounted there starts with the right owner.
RUN groupadd --system --gid 10001 encore \
    && useradd --system --uid 10001 --gid encore --home-dir /home/encore --create-home \
        --shell /usr/sbin/nologin encore \
    && mkdir -p /data \
    && chown encore:encore /data

COPY --from=build /opt/venv /opt/venv

USER encore
WORKDIR /home/encore

EXPOSE 8000

# Python stdlib only: the slim image has no curl. Meaningful for `serve`; docker-compose.yml turns it
# off for the services that run another subcommand.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

ENTRYPOINT ["encore"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
