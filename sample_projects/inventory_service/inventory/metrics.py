from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

# Someone tried to "make sure" SQLAlchemy is traced.
SQLAlchemyInstrumentor.instrument()
