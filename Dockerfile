# One image for the tuner service, the MLflow server and the Ray nodes (workers need the project installed).
# CPU build (default):  docker build -t adamtune:latest .
# CUDA build (GPU Ray workers; docker-compose.gpu.yml passes these):
#   docker build -t adamtune:cuda --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
FROM python:3.11-slim
# The torch requirement and the index it comes from: the CPU wheel by default, a CUDA wheel
# with e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (the driver comes from
# the host, through the NVIDIA container toolkit). Keep TORCH in step with the Makefile.
ARG TORCH="torch==2.13.0"
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /app
# Ray's usage stats and MLflow's telemetry stay off in every service (override to opt in).
ENV RAY_USAGE_STATS_ENABLED=0 MLFLOW_DISABLE_TELEMETRY=true
# Triton compiles its kernel launcher with the system C compiler at the first launch on a GPU.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" $TORCH
COPY pyproject.toml README.md ./
COPY tuner tuner
COPY workers workers
COPY search_spaces search_spaces
# The extra .[triton]: FusedAdam/PackedAdam's Triton kernels (backend="triton"). A CUDA torch
# wheel already brings the Triton it was built with, which satisfies the extra.
RUN pip install --no-cache-dir ".[triton]"
