# media-service: the production image. No secrets here: every setting arrives as MEDIA_* environment
# at run time (see deploy/PRODUCTION.md). Build context is limited by .dockerignore.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MEDIA_DATA_DIR=/var/lib/media-service

# A fixed numeric uid/gid so orchestrators can verify runAsNonRoot and volumes can be chowned ahead.
RUN groupadd --system --gid 10001 media \
 && useradd --system --uid 10001 --gid media --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin media \
 && install -d -o media -g media -m 0750 /var/lib/media-service

WORKDIR /build
COPY pyproject.toml README.md piccolo_conf.py ./
COPY media ./media
COPY api ./api
COPY streaming ./streaming
COPY server ./server
COPY migrations ./migrations
# A regular (not editable) install: the sources are deleted afterwards and root owns site-packages,
# so the running process cannot rewrite its own code.
RUN pip install . && rm -rf /build

WORKDIR /var/lib/media-service
USER 10001:10001
EXPOSE 8090

# python:3.11-slim has no curl; urlopen raises on any non-2xx answer, so 503 from /readyz fails.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/readyz', timeout=4)"]

ENTRYPOINT ["media-service"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8090"]
