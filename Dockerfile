# syntax=docker/dockerfile:1
# Two stages: the builder turns the source tree into a wheel; the runtime image holds only a
# virtual environment with that wheel and its dependencies. No compiler, no pip cache, no source.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip wheel --no-deps --wheel-dir /wheels .
# The lock travels with the wheel into the runtime stage (through the same bind mount).
COPY requirements.lock /wheels/

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="pai-operator" \
      org.opencontainers.image.description="Kubernetes operator that manages Alibaba Cloud PAI model versions as ModelVersion objects" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/pai-mlops/pai-model-operator" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.11-slim-bookworm"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/pai-operator PATH=/opt/pai-operator/bin:$PATH
# The wheel holds both packages: the operator and `pai-emulator` (about 70 KB, no dependency of its
# own), kept for in-cluster demos and the kind e2e test; it never runs unless invoked. README: "The image".
# The wheel comes in through a bind mount, so it never becomes a layer of the final image.
# Dependencies: exactly the hashed versions of requirements.lock (make lock); the wheel: --no-deps.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv "${VIRTUAL_ENV}" \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir --require-hashes --no-deps -r /wheels/requirements.lock \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir --no-deps /wheels/*.whl \
    && "${VIRTUAL_ENV}/bin/pip" uninstall --yes pip setuptools wheel \
    && pai-operator --version
# Numeric, so that runAsNonRoot can be verified by the kubelet without an /etc/passwd lookup.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["pai-operator", "run"]
