# syntax=docker/dockerfile:1
# nosana-keeper image: `docker build -t nosana-keeper:0.1.0 .`
# Stage one builds wheels for the keeper and every dependency; stage two installs only those
# wheels (no compiler, no network) into a virtualenv and runs as a fixed non-root UID. Nothing
# is written at run time, so the root filesystem can be mounted read-only. No HEALTHCHECK:
# Kubernetes probes /healthz and /readyz (see helm/nosana-keeper).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY keeper ./keeper
RUN python -m pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="nosana-keeper" \
      org.opencontainers.image.description="Maintenance service (keeper) for the Nosana Jobs program on Solana" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/nosana-keeper \
    PATH=/opt/nosana-keeper/bin:$PATH
RUN groupadd --system --gid 10001 keeper \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin keeper
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv "$VIRTUAL_ENV" \
    && "$VIRTUAL_ENV/bin/pip" install --no-index --find-links=/wheels nosana-keeper \
    && "$VIRTUAL_ENV/bin/nosana-keeper" --version
USER 10001:10001
WORKDIR /tmp
EXPOSE 9108
ENTRYPOINT ["nosana-keeper"]
CMD ["run"]
