from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

from worker import settings

engine = create_async_engine(settings.DATABASE_URL, pool_size=5)
Session = async_sessionmaker(engine)

# The legacy reporting code still talks to the database synchronously.
legacy_engine = create_engine(settings.DATABASE_URL.replace("+asyncpg", "+psycopg2"))
LegacySession = sessionmaker(legacy_engine)
