"""`uvicorn app.main:app`: importing this module sets up tracing (no setup function to call)."""

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import app.telemetry  # noqa: F401  (sets the provider and instruments the engine)
from app.db import SessionLocal


async def products(request):
    async with SessionLocal() as session:
        count = (await session.execute(text("SELECT 1"))).scalar_one()
    return JSONResponse({"products": count})


app = Starlette(routes=[Route("/products", products)])
