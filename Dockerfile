# One image for every role: `leadflow serve` (the default: API and worker in one process on
# an embedded SQLite database in /data), or `leadflow api`, `leadflow worker` and
# `leadflow migrate` against PostgreSQL (deploy/compose.yaml, deploy/kubernetes/).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LEADFLOW_HOST=0.0.0.0 \
    LEADFLOW_PORT=8000 \
    LEADFLOW_DATABASE_URL=sqlite+aiosqlite:////data/leadflow.db \
    LEADFLOW_OUTBOX_DIR=/data/outbox

# The migrations are found in the working directory (config.find_migrations_dir), so every
# role runs from /app.
WORKDIR /app
# Dependencies first, in their own layer: a change to the source alone does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p src/leadflow \
    && touch src/leadflow/__init__.py \
    && pip install . \
    && pip uninstall -y leadflow \
    && rm -rf src
COPY alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app leadflow \
    && mkdir -p /data \
    && chown leadflow /data

USER 10001
VOLUME ["/data"]
# 8000: the API (LEADFLOW_PORT). 9464: /metrics when LEADFLOW_METRICS_PORT is set to it, as
# the deploy files do.
EXPOSE 8000 9464
# Liveness of the HTTP roles (`serve`, `api`). A worker serves no HTTP API: the deploy files
# give it a check of its own.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LEADFLOW_PORT', '8000'), timeout=2)"
CMD ["leadflow", "serve"]
