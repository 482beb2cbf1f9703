import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from worker.db import engine
from worker import tracing  # noqa: F401  (sets up tracing on import)
from worker.jobs import charge_invoice, monthly_report

trace.set_tracer_provider(TracerProvider())


async def main() -> None:
    await charge_invoice(42)
    await monthly_report("2026-10")
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
