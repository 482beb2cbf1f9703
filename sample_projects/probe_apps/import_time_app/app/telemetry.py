"""Wired when imported: the provider is set and the engine instrumented at module level."""

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from app.db import engine

provider = TracerProvider(resource=Resource.create({"service.name": "catalog"}))
trace.set_tracer_provider(provider)
SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
