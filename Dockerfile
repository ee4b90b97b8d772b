# Switchboard media server. Build: docker build -t switchboard .  Run: docker run -p 8000:8000 -e PUBLIC_URL=… switchboard
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    SWITCHBOARD_HOST=0.0.0.0 SWITCHBOARD_PORT=8000 SWITCHBOARD_DATA_DIR=/data MALLOC_ARENA_MAX=2

RUN useradd --create-home --uid 10001 switchboard && mkdir -p /data && chown switchboard /data
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY audio ./audio
COPY switchboard ./switchboard
RUN pip install -c requirements.lock .

USER switchboard
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
# SIGTERM drains live calls for SWITCHBOARD_DRAIN_S (60 s) before finalising them: give `docker stop -t 150` (or
# the orchestrator's grace period) the drain plus about a minute, or the calls still live are killed unfinalised.
STOPSIGNAL SIGTERM
CMD ["switchboard", "serve"]
