FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LEADFLOW_HOST=0.0.0.0 \
    LEADFLOW_PORT=8000 \
    LEADFLOW_DATABASE_URL=sqlite+aiosqlite:////data/leadflow.db \
    LEADFLOW_OUTBOX_DIR=/data/outbox

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app leadflow \
    && mkdir -p /data \
    && chown leadflow /data

USER leadflow
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["leadflow", "serve"]
