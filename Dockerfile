# The flight API image: dependencies from the hash-pinned runtime lock, app code, non-root. It ships
# what runs in the cloud: the service and the operator's dead-letter command (python -m app.deadletters),
# never the local stand-ins (.dockerignore; the wheel leaves out the same, see pyproject.toml).
# BASE_IMAGE is pinned by digest; Renovate (.github/renovate.json) bumps the digest, never a floating tag.
ARG BASE_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Builder: only the runtime requirements, every wheel checked against its hash, no resolver.
# The venv gets no pip/setuptools of its own: the base's pip installs into it. runtime.txt leaves
# out the libraries the service never imports (Makefile, RUNTIME_NEVER_IMPORTED); prune-runtime.sh
# deletes the installed files it never serves (Swagger Editor). Bytecode is compiled here: without
# it every cold start compiles ~1,100 modules (start-up 1.5 s -> 3.5 s, docs/performance.md).
FROM base AS builder
COPY requirements/runtime.txt requirements/prune-runtime.sh /tmp/
RUN python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes --no-deps \
        -r /tmp/runtime.txt \
    && sh /tmp/prune-runtime.sh /opt/venv

FROM base AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /srv
COPY app/ ./app/
ENV PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/health', timeout=2)"]
CMD ["python", "-m", "app.api"]
