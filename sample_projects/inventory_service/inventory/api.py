from fastapi import Depends, FastAPI
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from inventory.database import DATABASE_URL, get_db
from inventory.observability import instrument_async_database, instrument_database
from inventory.models import Item

app = FastAPI()


@app.on_event("startup")
async def startup() -> None:
    instrument_database()
    instrument_async_database()


@app.get("/items/{item_id}")
async def read_item(item_id: int, db: Session = Depends(get_db)):
    return db.get(Item, item_id)


@app.get("/stock-report")
async def stock_report():
    reporting = create_engine(DATABASE_URL, pool_size=2)
    with reporting.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT sku, qty FROM stock"))]
