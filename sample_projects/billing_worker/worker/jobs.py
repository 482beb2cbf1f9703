from sqlalchemy import select, text

from worker.db import LegacySession, Session


async def charge_invoice(invoice_id: int) -> None:
    async with Session() as session:
        await session.execute(text("UPDATE invoices SET state = 'charged' WHERE id = :id"), {"id": invoice_id})
        await session.commit()


async def monthly_report(month: str) -> list:
    with LegacySession() as session:
        rows = session.execute(text("SELECT customer_id, sum(amount) FROM invoices WHERE month = :m GROUP BY 1"), {"m": month})
        return list(rows)
