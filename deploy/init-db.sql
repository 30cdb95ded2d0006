-- One database per owner of an alembic_version table: MLflow, Optuna, and adamtune's sweep queue.
CREATE DATABASE mlflow;
CREATE DATABASE optuna;
CREATE DATABASE tuner;
