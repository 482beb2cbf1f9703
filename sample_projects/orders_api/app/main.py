from fastapi import FastAPI

from app.api.orders import router
from app.telemetry import setup_tracing

setup_tracing()
app = FastAPI(title="orders")
app.include_router(router)
