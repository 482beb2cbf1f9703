"""Tracing: the provider at start-up, the engine's instrumentation once the engine exists."""

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine


def setup_tracing() -> None:
    trace.set_tracer_provider(TracerProvider(resource=Resource.create({"service.name": "inventory"})))


def instrument_engine(engine: AsyncEngine) -> None:
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
