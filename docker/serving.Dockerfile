# syntax=docker/dockerfile:1.7
# Serving image: KServe predictor and Feast transformer, drift detector, retrain trigger, canary
# controller and the Feast feature server (`feast serve` over /app/feature_repo). The chart picks
# the process with the container args; the default is the predictor.
# Build from the repository root: docker build -f docker/serving.Dockerfile .

# ---- build: a virtualenv with the locked dependencies, then the project itself
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The lock first: this layer is rebuilt only when the dependencies change, not the source.
# torch is pinned as a +cpu build (PyTorch CPU index). TORCH_VARIANT selects the torch build:
# `cpu` (default) installs the lock as is; a CUDA build such as `cu128` (skaffold -p gpu) installs
# the lock without torch, then the same torch version's CUDA build from its PyTorch index with the
# CUDA libraries (nvidia-*) its metadata pins.
ARG TORCH_VARIANT=cpu
COPY requirements.lock ./
RUN if [ "$TORCH_VARIANT" = cpu ]; then \
      pip install --no-deps --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock; \
    else \
      torch_version="$(sed -n 's/^torch==\([^+]*\)+cpu$/\1/p' requirements.lock)" \
      && test -n "$torch_version" \
      && grep -v '^torch==' requirements.lock > /tmp/requirements-without-torch.lock \
      && pip install --no-deps -r /tmp/requirements-without-torch.lock \
      && pip install --index-url "https://download.pytorch.org/whl/$TORCH_VARIANT" \
           "torch==$torch_version+$TORCH_VARIANT"; \
    fi
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY trending ./trending
COPY serving ./serving
COPY components ./components
COPY pipelines ./pipelines
RUN pip install --no-deps .

# ---- runtime: the virtualenv and the Feast repository, a fixed non-root user
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
RUN groupadd --system --gid 10001 trending \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin trending
COPY --from=build /opt/venv /opt/venv
COPY --chown=0:0 feature_repo /app/feature_repo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TRENDING_PROFILE=cluster \
    TRENDING_FEATURE_REPO=/app/feature_repo
WORKDIR /app
USER 10001:10001
EXPOSE 8080 8081
CMD ["python", "-m", "serving.predictor"]
