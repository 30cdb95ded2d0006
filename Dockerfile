# One image for the tuner service, the MLflow server and the Ray nodes (workers need the project installed).
FROM python:3.11-slim
ARG TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
WORKDIR /app
# Ray's usage stats and MLflow's telemetry stay off in every service (override to opt in).
ENV RAY_USAGE_STATS_ENABLED=0 MLFLOW_DISABLE_TELEMETRY=true
RUN pip install --no-cache-dir $TORCH
COPY pyproject.toml README.md ./
COPY tuner tuner
COPY workers workers
COPY search_spaces search_spaces
RUN pip install --no-cache-dir .
