"""`uvicorn --factory inventory.main:create_app`: the engine exists only once the lifespan ran."""

from contextlib import asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from inventory import db, telemetry


@asynccontextmanager
async def lifespan(app: Starlette):
    engine = db.init_engine()
    telemetry.instrument_engine(engine)
    yield
    await db.close_engine()


async def items(request):
    async with db.SessionLocal() as session:
        count = (await session.execute(text("SELECT 1"))).scalar_one()
    return JSONResponse({"items": count})


def create_app() -> Starlette:
    telemetry.setup_tracing()
    return Starlette(routes=[Route("/items", items)], lifespan=lifespan)
