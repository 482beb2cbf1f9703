from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

from inventory.database import async_engine, engine

try:
    from opentelemetry.sdk.trace.export import OTLPSpanExporter
except ImportError:
    OTLPSpanExporter = None


def instrument_database() -> None:
    SQLAlchemyInstrumentor().instrument(engine=engine, enable_attribute_commenter=True, enable_commenter=True)


def instrument_async_database() -> None:
    SQLAlchemyInstrumentor().instrument(engine=async_engine.sync_engine)
