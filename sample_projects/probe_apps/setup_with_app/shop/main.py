"""The ASGI app. Its lifespan checks the database and keeps the engine in app.state."""

from contextlib import asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from shop.db import engine


@asynccontextmanager
async def lifespan(app: Starlette):
    async with engine.connect() as conn:  # fail fast when the database is down
        await conn.execute(text("SELECT 1"))
    app.state.engine = engine
    yield
    await engine.dispose()


async def health(request):
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/health", health)], lifespan=lifespan)
app.state.service_name = "shop"
