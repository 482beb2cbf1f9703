from fastapi import Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import telemetry  # noqa: F401  (provider first)
from catalog.db import get_session

app = FastAPI()
SORTABLE = {"name": "name", "price": "price"}


def _count_rows(sync_session, table: str) -> int:
    return sync_session.execute(text("SELECT count(*) FROM products")).scalar_one()


@app.get("/products")
async def list_products(order: str = "name", session: AsyncSession = Depends(get_session)):
    column = SORTABLE.get(order, "name")
    result = await session.execute(text(f"SELECT id, name, price FROM products ORDER BY {SORTABLE[order]}"))
    return [dict(r._mapping) for r in result]


@app.get("/products/{product_id}")
async def get_product(product_id: int, session: AsyncSession = Depends(get_session)):
    result = await session.execute(text("SELECT id, name, price FROM products WHERE id = :id"), {"id": product_id})
    return dict(result.one()._mapping)


@app.get("/stats")
async def stats(session: AsyncSession = Depends(get_session)):
    return {"products": await session.run_sync(_count_rows, "products")}
