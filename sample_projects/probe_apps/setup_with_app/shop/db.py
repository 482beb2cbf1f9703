"""The engine, created when this module is imported; the URL comes from DATABASE_URL."""

import os

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine(os.environ.get("DATABASE_URL", "sqlite+aiosqlite://"))
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
