# One image for the API and the workers.
#   CPU (default):  docker build -t avatune .
#   CUDA:           docker build -t avatune:cuda \
#                     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#                     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
# On a CUDA base image pip takes torch from TORCH_INDEX (a CUDA build of the pinned
# version); the base image must provide python3 and pip (install them there if not).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_INDEX=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY constraints.txt ./
RUN if [ -n "$TORCH_INDEX" ]; then \
        pip install -c constraints.txt --index-url "$TORCH_INDEX" torch==2.13.0; \
    else \
        pip install -c constraints.txt torch==2.13.0; \
    fi
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY optim ./optim
COPY studies ./studies
COPY workers ./workers
COPY service ./service
# editable: migrations are read from /app/alembic, beside the code
RUN pip install -c constraints.txt -e . \
    && useradd --create-home --uid 10001 avatune \
    && mkdir -p /data && chown avatune /data

USER avatune
WORKDIR /data
ENV AVATUNE_DATA_DIR=/data
EXPOSE 8000
ENTRYPOINT ["avatune"]
CMD ["serve", "--host", "0.0.0.0"]
