# Shoal: one image for both entry points, `shoal operator` and `shoal worker APP`.
#
#   docker build -t shoal:dev .                       # elsewhere: python:3.11-slim from Docker Hub
#   scripts/build-image.sh [TAG]                      # here: also makes a local Debian base if needed
#
# Needs BuildKit (Docker 23+, or DOCKER_BUILDKIT=1): the build stage reads an optional secret
# `pip-ca` (a CA bundle for pip, e.g. --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt)
# that is mounted for one RUN and is never stored in any layer.
# No `# syntax=` line on purpose: that would pull the Dockerfile frontend from a registry.

ARG BASE_IMAGE=python:3.11-slim

# ---- build: a virtualenv holding shoal[operator] and its dependencies ---------------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/shoal
WORKDIR /src
# Dependencies first, read from pyproject.toml: this layer is rebuilt only when they change,
# not on every code change.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
extra = p["optional-dependencies"]; \
print("\n".join(p["dependencies"] + extra["operator"] + extra["dashboard"]))' >/tmp/requirements.txt \
    && /opt/shoal/bin/pip install --compile -r /tmp/requirements.txt
COPY README.md ./
COPY worker_runtime ./worker_runtime
COPY operator ./operator
COPY shoal ./shoal
# Then Shoal itself (pip checks the dependencies are all there). pip and setuptools are only
# needed to install: the final image runs, it never installs.
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && /opt/shoal/bin/pip install --compile '.[operator,dashboard]' \
    && /opt/shoal/bin/pip uninstall -y -q pip setuptools \
    && /opt/shoal/bin/shoal --help >/dev/null

# ---- final: the base image plus the virtualenv, nothing else -----------------------------------
FROM ${BASE_IMAGE}
ARG SHOAL_UID=10001
# A passwd entry for the numeric user, so libraries that look the user up get an answer; HOME is
# /tmp, the one writable place (an emptyDir in Kubernetes, --tmpfs /tmp with docker --read-only).
RUN echo "shoal:x:${SHOAL_UID}:${SHOAL_UID}:shoal:/tmp:/usr/sbin/nologin" >>/etc/passwd \
    && echo "shoal:x:${SHOAL_UID}:" >>/etc/group
COPY --from=build /opt/shoal /opt/shoal
ENV PATH=/opt/shoal/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATUS_STORE_URL=sqlite+aiosqlite:////tmp/shoal-status.db
# Relative paths anything may write land in /tmp too.
WORKDIR /tmp
USER ${SHOAL_UID}:${SHOAL_UID}
# The worker's /livez /readyz /metrics; the operator's /healthz and /metrics.
EXPOSE 9091 8080 9090
ENTRYPOINT ["shoal"]
CMD ["--help"]
