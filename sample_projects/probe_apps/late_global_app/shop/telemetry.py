"""Wrong wiring (OSD102): the engine module is imported first, then the global instrument()
runs; the engine already exists, so it only ever gets `connect` spans."""

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from shop.db import engine  # noqa: F401  (the app imports its models/db early)


def setup() -> None:
    trace.set_tracer_provider(TracerProvider())
    SQLAlchemyInstrumentor().instrument(enable_commenter=True)
