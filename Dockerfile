# One image for every gcal-jobs process; the command chooses which:
#
#   docker run IMAGE                                   auth_web (the default command)
#   docker run IMAGE python -m worker                  a job worker
#   docker run IMAGE python -m emulator --host 0.0.0.0 the Google emulator (development only)
#
# Settings come from GCAL_* variables (see .env.example, compose.yaml). The base image is a
# build argument: any Debian-based image with python3 >= 3.11 and its venv module. The default
# is the official slim image, pinned; CI passes one it makes locally (.ci/containers).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# A virtual environment on either base: Debian's own python3 refuses system-wide pip (PEP 668).
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml constraints.txt ./
# The runtime dependencies only (pyproject's [project] dependencies, not the dev extra), each
# at the version constraints.txt pins. A layer of its own: it changes only with these files.
RUN python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt -c constraints.txt
# Only the packages that run; no tests, benchmarks, docs or dev launcher. Compiled here, as the
# runtime user cannot (and need not) write __pycache__.
COPY gcal /app/gcal
COPY auth_web /app/auth_web
COPY worker /app/worker
COPY jobs /app/jobs
COPY emulator /app/emulator
RUN /opt/venv/bin/python -m compileall -q /app

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="gcal-jobs" \
      org.opencontainers.image.description="Google Calendar work for other services, through a Redis job queue"
# A fixed numeric id, so orchestrators can check "runs as non-root" (runAsNonRoot).
RUN useradd --no-log-init --uid 10001 --user-group \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin gcal
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# auth_web and the worker's /metrics listen on every address inside the container; compose
# and docker run map the ports. Logs are JSON lines, for a log collector.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GCAL_AUTH_WEB_HOST=0.0.0.0 \
    GCAL_WORKER_METRICS_HOST=0.0.0.0 \
    GCAL_LOG_FORMAT=json
WORKDIR /app
USER 10001:10001
# 8080: auth_web; 8081: a worker's Prometheus /metrics.
EXPOSE 8080 8081
# Probes the default command, auth_web. compose.yaml gives the worker and the emulator their
# own (python -m worker --check; the emulator's /_emulator/healthz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "auth_web", "--check"]
# Exec form: the process is the one the signal reaches. auth_web, the worker and the emulator
# each handle SIGTERM themselves (as PID 1 nothing else would); compose adds tini (init: true)
# to reap children as well.
CMD ["python", "-m", "auth_web"]
