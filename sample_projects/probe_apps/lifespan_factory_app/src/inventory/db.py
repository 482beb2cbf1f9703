"""The engine is created lazily, in the app's lifespan: `engine` is None until `init_engine()`."""

from __future__ import annotations

import os

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

engine: AsyncEngine | None = None
SessionLocal: async_sessionmaker | None = None


def init_engine() -> AsyncEngine:
    global engine, SessionLocal
    engine = create_async_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
    SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
    return engine


async def close_engine() -> None:
    global engine
    if engine is not None:
        await engine.dispose()
        engine = None
