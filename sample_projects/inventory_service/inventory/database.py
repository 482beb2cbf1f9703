from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import Session, create_engine

DATABASE_URL = "postgresql://inventory@db:5432/inventory"

engine = create_engine(DATABASE_URL, echo=False)
async_engine = create_async_engine(DATABASE_URL)


def get_db():
    with Session(engine) as session:
        yield session
