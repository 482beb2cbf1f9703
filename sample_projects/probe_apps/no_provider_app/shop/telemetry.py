"""Wrong wiring (OSD202): the engine is instrumented correctly, but no TracerProvider is ever
set, so every span is a no-op."""

from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor


def setup() -> None:
    from shop.db import engine

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
