# syntax=docker/dockerfile:1.7
# KFP component image: the `trending` package and its locked dependencies. Every component's
# base_image (TRENDING_COMPONENT_IMAGE) and the chart's pipeline-upload Job run it.
# Build from the repository root: docker build -f docker/component.Dockerfile .

# ---- build: a virtualenv with the locked dependencies, then the project itself
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The lock first: this layer is rebuilt only when the dependencies change, not the source.
# torch is pinned as a +cpu build, which lives on the PyTorch CPU index.
COPY requirements.lock ./
RUN pip install --no-deps --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock
COPY pyproject.toml README.md ./
COPY trending ./trending
COPY components ./components
COPY pipelines ./pipelines
COPY serving ./serving
RUN pip install --no-deps .

# ---- runtime: the virtualenv only, a fixed non-root user
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
RUN groupadd --system --gid 10001 trending \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin trending
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TRENDING_PROFILE=cluster
WORKDIR /app
USER 10001:10001
CMD ["trending", "--help"]
