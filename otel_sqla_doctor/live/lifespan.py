"""The ASGI lifespan protocol, driven the way a server (uvicorn) or a test client (Starlette's
TestClient, asgi-lifespan) drives it: send `lifespan.startup`, wait for `lifespan.startup.complete`
or `.failed`; at the end `lifespan.shutdown`, wait for `.complete` or `.failed`.

Many services create their engine, and instrument it, only here (`init_engine()` in the
lifespan); the probe starts the app this way so that it sees what a running service has.

The app runs as a task on the probe's `EventLoop`. Each phase is run step by step, so that in
between (while the probe's own code runs) no event loop is running, and the task, suspended in
`receive()`, resumes on the same loop for the shutdown.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from typing import Any, Callable

# The first line of the server's message is enough: Starlette sends the whole traceback.
_FIRST_LINE = 300


class LifespanFailed(Exception):
    """The app reported (or raised) a failure in its lifespan startup; `reason` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _awaited_frames(awaitable: Any) -> list[traceback.FrameSummary]:
    """The frames a suspended task is waiting in, outermost first: coroutines (`cr_await`),
    generators, async generators; an `asynccontextmanager`'s generator is found through its
    `self.gen` (the `anext()` it awaits hides it). Best effort: for messages only."""
    frames: list[traceback.FrameSummary] = []
    current = awaitable
    for _ in range(200):
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None) or getattr(current, "ag_frame", None)
        following = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None) or getattr(current, "ag_await", None)
        if frame is None:
            break
        frames.append(traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name, line=""))
        if following is not None and not any(hasattr(following, a) for a in ("cr_frame", "gi_frame", "ag_frame")):
            try:
                generator = getattr(frame.f_locals.get("self"), "gen", None)
            except Exception:
                generator = None
            following = generator if generator is not None and generator is not current else None
        current = following
    return frames


class Lifespan:
    """One app's lifespan on `run` (the probe's `EventLoop.run`)."""

    def __init__(self, app: Any, run: Callable[[Any], Any], timeout: float) -> None:
        self.app = app
        self._run = run
        self.timeout = timeout
        self.state: dict = {}  # the lifespan state ("state" in the scope; FastAPI's `yield {...}`)
        self.supported = True
        self.started = False
        self._received = False  # whether the app ever asked for a message
        self._task: asyncio.Task | None = None
        self._to_app: asyncio.Queue | None = None
        self._from_app: asyncio.Queue | None = None

    def frames(self) -> list[traceback.FrameSummary]:
        """Where the app's lifespan is waiting (for the watchdog's message)."""
        task = self._task
        if task is None or task.done():
            return []
        return _awaited_frames(task.get_coro())

    async def _receive(self) -> dict:
        self._received = True
        assert self._to_app is not None
        return await self._to_app.get()

    async def _send(self, message: dict) -> None:
        assert self._from_app is not None
        await self._from_app.put(message)

    async def _next_message(self) -> dict | None:
        """The app's next message, or None when its task ended first."""
        assert self._task is not None and self._from_app is not None
        getter = asyncio.ensure_future(self._from_app.get())
        await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        return None

    async def _startup(self) -> dict | None:
        self._to_app, self._from_app = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        self._task = asyncio.ensure_future(self.app(scope, self._receive, self._send))
        await self._to_app.put({"type": "lifespan.startup"})
        return await self._next_message()

    def start(self, describe: Callable[[BaseException], str]) -> str:
        """Run the startup (the caller bounds it). Returns what happened, in a few words; raises
        LifespanFailed when the app reports or raises a failure."""
        began = time.monotonic()
        message = self._run(self._startup())
        task = self._task
        assert task is not None
        if message is None:  # the app's lifespan ended without a word
            error = task.exception() if not task.cancelled() else None
            if not self._received:
                # As uvicorn's `--lifespan auto`: an app that raises or returns before asking for
                # a message does not speak the lifespan protocol (a bare ASGI app, say).
                self.supported = False
                why = f" (it raised {describe(error)})" if error is not None else ""
                return f"the app does not support the ASGI lifespan protocol{why}; nothing was started"
            if error is not None:
                raise LifespanFailed(describe(error))
            raise LifespanFailed("the app's lifespan returned before it reported lifespan.startup.complete")
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "lifespan.startup.failed":
            # Starlette re-raises right after it reports: that exception has the user's frame.
            self._run(asyncio.wait({task}, timeout=min(self.timeout, 1.0)))
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise LifespanFailed(describe(task.exception()))
            reported = str(message.get("message") or "").strip().splitlines()
            raise LifespanFailed(reported[-1][:_FIRST_LINE] if reported else "the app reported lifespan.startup.failed")
        if kind != "lifespan.startup.complete":
            raise LifespanFailed(f"the app sent {kind!r} where lifespan.startup.complete or .failed was expected")
        self.started = True
        return f"startup complete in {(time.monotonic() - began) * 1000:.0f} ms"

    async def _shutdown(self) -> str:
        assert self._task is not None and self._to_app is not None
        if self._task.done():
            return "the app's lifespan had already ended, so no shutdown was sent"
        await self._to_app.put({"type": "lifespan.shutdown"})
        try:
            message = await asyncio.wait_for(self._next_message(), self.timeout)
        except asyncio.TimeoutError:
            return f"shutdown did not finish within --timeout {self.timeout:g}s; it was abandoned"
        if message is None:
            error = self._task.exception() if not self._task.cancelled() else None
            return f"shutdown failed: {error!r}" if error is not None else "shutdown complete"
        if message.get("type") == "lifespan.shutdown.failed":
            await asyncio.wait({self._task}, timeout=min(self.timeout, 1.0))
            reported = str(message.get("message") or "").strip().splitlines()
            return f"shutdown failed: {reported[-1][:_FIRST_LINE]}" if reported else "shutdown failed"
        return "shutdown complete"

    def stop(self, describe: Callable[[BaseException], str]) -> str:
        """Run the shutdown, bounded by the timeout; never raises (the report is already made)."""
        if not self.started or self._task is None:
            return ""
        try:
            result = self._run(self._shutdown())
        except Exception as exc:  # the app's shutdown raised inside our awaiting: say so
            return f"shutdown failed: {describe(exc)}"
        task = self._task
        if result.startswith("shutdown failed: ") and task.done() and not task.cancelled() and task.exception() is not None:
            return f"shutdown failed: {describe(task.exception())}"
        return result
