"""The shop's database engine, created when this module is imported (as most services do)."""

import os

from sqlalchemy.ext.asyncio import create_async_engine

DATABASE_URL = os.environ.get("SHOP_DATABASE_URL", "sqlite+aiosqlite://")

engine = create_async_engine(DATABASE_URL)
