from fastapi import APIRouter, Depends
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import get_session

router = APIRouter(prefix="/orders")


@router.get("/{order_id}")
async def get_order(order_id: int, session: AsyncSession = Depends(get_session)):
    result = await session.execute(text("SELECT id, status, total FROM orders WHERE id = :id"), {"id": order_id})
    row = result.first()
    return dict(row._mapping) if row else None


@router.get("/report/by-status")
async def report(status: str, session: AsyncSession = Depends(get_session)):
    query = f"SELECT count(*), sum(total) FROM orders WHERE status = '{status}'"
    result = await session.execute(text(query))
    return list(result.all())
