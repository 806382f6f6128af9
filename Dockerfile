# botdock image: a uv builder stage that resolves nothing (uv.lock is the truth) and a slim
# runtime stage with only the virtual environment, the code and a non-root user.
#
#   docker build -t botdock .
#   docker build --build-arg PYTHON_VERSION=3.13 -t botdock .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/botdock .
#
# Nothing here is architecture-specific: the base images are multi-arch and uv installs the
# wheels for the platform being built.

ARG PYTHON_VERSION=3.12

# uv itself, pinned; a stage of its own because `COPY --from` cannot take a variable.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---------------------------------------------------------------------------- builder
FROM python:${PYTHON_VERSION}-slim AS builder

COPY --from=uv /uv /usr/local/bin/uv

# Compile bytecode at install time (faster start, and a read-only root file system never needs
# to write it); copy rather than hard-link out of the cache mount; use the base image's Python
# and never download one; keep the environment outside /app so it is a layer of its own.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv

WORKDIR /app

# 1. Dependencies only, from the lock file: this layer is rebuilt only when uv.lock or
#    pyproject.toml change, and the cache mount keeps downloads across builds.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-install-project --no-dev

# 2. The project (.dockerignore keeps .env, .git, .venv, caches and tests out). With
#    `package = false` there is nothing to build: the sync checks the lock still matches
#    pyproject.toml; compileall does for our code what UV_COMPILE_BYTECODE did for the rest.
COPY . /app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev \
    && python -m compileall -q /app

# ---------------------------------------------------------------------------- runtime
FROM python:${PYTHON_VERSION}-slim AS runtime

ARG PYTHON_VERSION
ARG VERSION=dev
ARG REVISION=unknown

LABEL org.opencontainers.image.title="botdock" \
      org.opencontainers.image.description="A containerized service for voice and chat bots, compatible with Pipecat Cloud's platform contract" \
      org.opencontainers.image.licenses="BSD-2-Clause" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="python:${PYTHON_VERSION}-slim"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it and volumes can be
# prepared for it. `USER 10001` takes the group from /etc/passwd.
RUN groupadd --system --gid 10001 botdock \
    && useradd --system --uid 10001 --gid botdock --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin botdock

# Both stay root-owned, read-only to the service: it cannot change its own code or
# dependencies. (The usual `COPY --chown=<user>` serves `docker compose watch` syncing files
# into the container; this project's watch rebuilds instead, see docker-compose.yml.)
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    CONSOLE_ENABLED=false

WORKDIR /app
USER 10001
EXPOSE 8080

# urllib instead of curl: nothing extra installed. Reads PORT, so `-e PORT=...` keeps it right.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/livez', timeout=2)"]

# Exec form: python is PID 1 and receives SIGTERM itself; the service drains and exits 0.
# (A bot that starts child processes may add an init to reap orphans: `docker run --init`.)
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app"]
