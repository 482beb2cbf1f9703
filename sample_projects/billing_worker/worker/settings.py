import os

DATABASE_URL = os.getenv("DATABASE_URL", "postgresql+asyncpg://billing@db:5432/billing")
OTLP_ENDPOINT = os.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")
