from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.core.config import settings


def build_engine(url: str) -> AsyncEngine:
    return create_async_engine(url, pool_size=10, max_overflow=5, pool_pre_ping=True)


engine = build_engine(settings.database_url)
SessionLocal = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def get_session():
    async with SessionLocal() as session:
        yield session
