"""Wrong wiring (OSD106, upstream #2149): the global instrument() runs before
sqlalchemy.ext.asyncio is first imported, so the async engine gets two EngineTracers: two
spans start per query, one ends, and the SQL carries two comments."""

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider


def setup() -> None:
    trace.set_tracer_provider(TracerProvider())
    SQLAlchemyInstrumentor().instrument(enable_commenter=True)

    import shop.db  # noqa: F401  (first import of sqlalchemy.ext.asyncio happens here)
