# One image for the API (`avatune serve`) and the workers (`avatune worker`).
#
# CPU (default): python:3.11-slim and PyTorch's CPU wheel.
#   docker build -t avatune .
# GPU: take torch from a CUDA wheel index. PyTorch's CUDA wheels bring their own CUDA
# libraries, so the slim base is enough; the host needs the NVIDIA driver and the NVIDIA
# Container Toolkit. Pick a CUDA version that torch 2.13.0 is published for and that the
# host's driver supports (https://pytorch.org/get-started/locally/):
#   docker build -t avatune --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 .
# or, on a CUDA base image (python3 is installed there when the base lacks it):
#   docker build -t avatune \
#     --build-arg BASE_IMAGE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 .
# An empty TORCH_INDEX_URL takes torch from PyPI alone (on Linux x86_64, a CUDA build).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# A virtual environment, so that the same steps work on any base image with a python3
# (or none: Debian/Ubuntu bases get one from apt). A C compiler builds the one-pass CPU
# optimizer step on first use (without one, CPU workers take the slower eager step).
RUN packages=""; \
    command -v python3 >/dev/null 2>&1 || packages="python3 python3-venv"; \
    command -v cc >/dev/null 2>&1 || packages="$packages gcc libc6-dev"; \
    if [ -n "$packages" ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv

WORKDIR /app
# torch first, in its own layer: it is by far the largest download and changes least.
# `torch==2.13.0` matches the local build tags of the index's wheels (2.13.0+cpu, 2.13.0+cu130).
COPY constraints.txt ./
RUN pip install -c constraints.txt ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} torch==2.13.0

COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY optim ./optim
COPY studies ./studies
COPY workers ./workers
COPY service ./service
COPY avatune ./avatune
# Editable, like `make install`: `avatune serve` and `avatune db upgrade` read the
# migrations from alembic.ini and alembic/ beside the packages, which a plain install
# into site-packages would leave behind.
RUN pip install -c constraints.txt -e . \
    && useradd --create-home --uid 10001 avatune \
    && mkdir -p /data \
    && chown avatune:avatune /data

USER avatune
# The working directory holds the default SQLite database (when AVATUNE_DATABASE_URL is
# not set) and, through AVATUNE_DATA_DIR, report figures: mount a volume here.
WORKDIR /data
ENV AVATUNE_DATA_DIR=/data
EXPOSE 8000

ENTRYPOINT ["avatune"]
# The API on every interface; it refuses to start without AVATUNE_TOKEN. Workers:
#   docker run -e AVATUNE_TOKEN=... avatune worker --server http://API_HOST:8000
CMD ["serve", "--host", "0.0.0.0"]
