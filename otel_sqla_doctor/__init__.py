"""otel-sqla-doctor: finds and proves OpenTelemetry tracing mistakes in SQLAlchemy asyncio services."""

__version__ = "0.1.0"
