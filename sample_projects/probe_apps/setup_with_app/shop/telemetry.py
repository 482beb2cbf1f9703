"""`setup_telemetry(app)`: the shape of `setup_fastapi_telemetry(app)`, `init_otel(app)`."""

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette

from shop.db import engine


def setup_telemetry(app: Starlette) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": app.state.service_name}))
    trace.set_tracer_provider(provider)
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider, enable_commenter=True)
    app.state.tracer_provider = provider
