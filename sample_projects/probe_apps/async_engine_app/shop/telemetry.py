"""Wrong wiring (OSD101): the AsyncEngine itself goes to the instrumentor, which raises
NotImplementedError; the broad except hides it, so the service starts with no query spans."""

import logging

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)


def setup() -> None:
    trace.set_tracer_provider(TracerProvider())

    from shop.db import engine

    try:
        SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=True)
    except Exception:
        log.debug("database tracing unavailable")
