"""Correct wiring: a TracerProvider, then the engine's *sync_engine* handed to the instrumentor."""

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


def setup() -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)

    from shop.db import engine

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
