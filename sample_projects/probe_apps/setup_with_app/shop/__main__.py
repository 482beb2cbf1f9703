"""`python -m shop`: the only place that calls setup_telemetry(app), so importing shop.main
does not wire tracing (hence `doctor probe --app shop.main:app --setup shop.telemetry:setup_telemetry`)."""

import uvicorn

from shop.main import app
from shop.telemetry import setup_telemetry

setup_telemetry(app)
uvicorn.run(app)
