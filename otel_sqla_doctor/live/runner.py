"""`probe()`: gather the observations (DSN mode or the user's own engine), then run every check.

In this process, or in a process of its own (`isolated.run_in`, which runs `run_here` there
through `remote`): always in the application's interpreter when that is another one, and always
when the user's code (`--engine`/`--setup`) runs, so that it can be bounded by --timeout and
stopped, and can never end the doctor (an exit, a hang, a crash are reported with their place).
"""

from __future__ import annotations

import asyncio
import math
import platform
from pathlib import Path
from typing import Any, Sequence

from otel_sqla_doctor import __version__
from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.live.environment import read_environment
from otel_sqla_doctor.live.interpreter import Interpreter, choose_interpreter, this_process
from otel_sqla_doctor.live.model import CheckResult, ProbeEnvironment, ProbeReport, Status
from otel_sqla_doctor.live.observations import ConnectOutcome, Observations, Wiring
from otel_sqla_doctor.live.packages import MissingPackage, installed_versions, require
from otel_sqla_doctor.redact import Redactor


def probe(
    dsn: str | None = None,
    *,
    engine_ref: str | None = None,
    setup_ref: str | None = None,
    app_dir: str | Path | Sequence[str | Path] | None = None,
    timeout: float = 5.0,
    python: str | Path | Interpreter | None = None,
    app_ref: str | None = None,
    lifespan: bool | None = None,
) -> ProbeReport:
    """Run the live checks OSD501-OSD510 and return the report.

    With `dsn` (or nothing: in-memory SQLite) the probe builds and instruments its own engine.
    With `engine_ref` and/or `app_ref` it starts the user's application as it starts in
    production (see `userapp`): the setup, the ASGI app (`app_ref`, "module:app" or a factory
    "module:create_app"), the app's lifespan (`lifespan`; None: with `app_ref`), and only then
    the engine (`engine_ref`, or the one AsyncEngine the app holds), which it probes as the
    application wired it. `app_dir` is one directory or several. `python` is the interpreter to
    run in (a path, or an `Interpreter` from `choose_interpreter`); None runs in this process.
    Raises UsageError for a DSN that cannot be used or a bad reference, MissingPackage (exit
    code 1) for a package the interpreter lacks; everything else, including "cannot connect", is
    a check result.
    """
    validate_options(dsn, engine_ref, setup_ref, app_dir, timeout, app_ref=app_ref, lifespan=lifespan)
    interpreter = _interpreter(python)
    if not interpreter.current or engine_ref or app_ref:
        from otel_sqla_doctor.live.isolated import run_in

        return run_in(
            interpreter, dsn=dsn, engine_ref=engine_ref, setup_ref=setup_ref, app_dir=app_dir, timeout=timeout,
            app_ref=app_ref, lifespan=lifespan,
        )
    return run_here(dsn, None, None, app_dir, timeout, interpreter)


async def probe_async(
    dsn: str | None = None,
    *,
    engine_ref: str | None = None,
    setup_ref: str | None = None,
    app_dir: str | Path | Sequence[str | Path] | None = None,
    timeout: float = 5.0,
    python: str | Path | Interpreter | None = None,
    app_ref: str | None = None,
    lifespan: bool | None = None,
) -> ProbeReport:
    validate_options(dsn, engine_ref, setup_ref, app_dir, timeout, app_ref=app_ref, lifespan=lifespan)
    interpreter = _interpreter(python)
    if not interpreter.current or engine_ref or app_ref:
        from otel_sqla_doctor.live.isolated import run_in

        return await asyncio.to_thread(
            run_in, interpreter, dsn=dsn, engine_ref=engine_ref, setup_ref=setup_ref, app_dir=app_dir, timeout=timeout,
            app_ref=app_ref, lifespan=lifespan,
        )
    redactor = Redactor()
    try:
        require()
        observations = await _observe_dsn(dsn, timeout, redactor)
    except MissingPackage as exc:
        raise exc.located(interpreter.python, f"{interpreter.whose}: {interpreter.reason}") from None
    return _finish(observations, interpreter, redactor)


MIN_TIMEOUT = 0.1
MAX_TIMEOUT = 3600.0


def validate_options(
    dsn: str | None, engine_ref: str | None, setup_ref: str | None, app_dir: Any, timeout: float, *,
    app_ref: str | None = None, lifespan: bool | None = None,
) -> None:
    """The usage errors that need no interpreter: raised before one is looked for or started."""
    from otel_sqla_doctor.live.userapp import app_dirs, is_app_path, parse_reference

    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        shown = f"{timeout:g}" if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) else repr(timeout)
        raise UsageError(f"--timeout must be a number of seconds from {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g}, got {shown}")
    if engine_ref and dsn:
        raise UsageError("give either a DSN or --engine, not both")
    if app_ref and dsn:
        raise UsageError("give either a DSN or --app, not both")
    if setup_ref and not (engine_ref or app_ref):
        raise UsageError("--setup only applies together with --engine or --app")
    if lifespan and not app_ref:
        raise UsageError("--lifespan needs --app: the ASGI app whose lifespan to run")
    if engine_ref and is_app_path(engine_ref) and not app_ref:
        raise UsageError(f"--engine {engine_ref} is a path into the app; give --app module:app too (or --engine package.module:attribute)")
    # The forms, and that a file given by path exists: before an interpreter is started.
    if app_ref:
        parse_reference(app_ref, "--app")
    if setup_ref:
        parse_reference(setup_ref, "--setup", import_only=True)
    if engine_ref and not is_app_path(engine_ref):
        parse_reference(engine_ref, "--engine")
    app_dirs(app_dir)


def _interpreter(python: str | Path | Interpreter | None) -> Interpreter:
    if python is None:
        return this_process()
    if isinstance(python, Interpreter):
        return python
    return choose_interpreter(python)


def run_here(
    dsn: str | None,
    engine_ref: str | None,
    setup_ref: str | None,
    app_dir: Any,
    timeout: float,
    interpreter: Interpreter,
    *,
    watchdog: Any = None,
    app_ref: str | None = None,
    lifespan: bool | None = None,
) -> ProbeReport:
    """The probe in this process, which is `interpreter`'s. The user's code (`--engine`/`--app`)
    runs first, in this thread, with no event loop running between its steps; `watchdog` (a
    `userapp.Watchdog`) bounds it and the probe's event loop. The app's lifespan is shut down
    after the probe. Run the user's code only in a process of its own."""
    from otel_sqla_doctor.live.userapp import EventLoop

    validate_options(dsn, engine_ref, setup_ref, app_dir, timeout, app_ref=app_ref, lifespan=lifespan)
    redactor = Redactor()
    loop = EventLoop()
    app = None
    try:
        try:
            require()
            if engine_ref or app_ref:
                from otel_sqla_doctor.live.userapp import load_user_app

                env = read_environment()
                app = load_user_app(
                    engine_ref, setup_ref, app_dir, redactor, loop=loop, guard=watchdog, app_ref=app_ref, lifespan=lifespan,
                    timeout=timeout,
                )
                try:
                    observations = loop.run(_observe_user_engine(app, app.engine_name, env, timeout, redactor, watchdog))
                finally:
                    app.shutdown()
            else:
                observations = loop.run(_observe_dsn(dsn, timeout, redactor, watchdog))
        except MissingPackage as exc:
            raise exc.located(interpreter.python, f"{interpreter.whose}: {interpreter.reason}") from None
    finally:
        loop.close()
    if app is not None:  # how the application was started, beside the interpreter lines
        import dataclasses

        return dataclasses.replace(_finish(observations, interpreter, redactor), startup=app.startup())
    return _finish(observations, interpreter, redactor)


def _finish(observations: Observations, interpreter: Interpreter, redactor: Redactor) -> ProbeReport:
    observations.environment = ProbeEnvironment(
        python=interpreter.python,
        python_version=platform.python_version(),
        reason=interpreter.reason,
        application=interpreter.application,
        packages=tuple(installed_versions(observations.driver).items()),
    )
    if not interpreter.application:
        # The installed SQLAlchemy is the doctor's: what the application gets is in its files.
        from otel_sqla_doctor.live.declared import read_declared

        observations.declared = read_declared(interpreter.project)
    report = _judge(observations, redactor)
    if observations.wiring.mode == "user" and observations.wiring.span_routes:
        # The app's own process, which ends after the report: its exporters must not hold it.
        from otel_sqla_doctor.live.checks._exporters import release

        release(observations.wiring.span_routes)
    return report


def _judge(observations: Observations, redactor: Redactor) -> ProbeReport:
    from otel_sqla_doctor.live.checks import ALL_CHECKS

    results = []
    for check in ALL_CHECKS:
        try:
            result = check.run(observations)
        except Exception as exc:  # one broken check must not hide the others
            result = check.result(Status.FAIL, f"internal error in this check: {type(exc).__name__}: {exc}", "please report this")
        results.append(
            CheckResult(
                code=result.code,
                name=result.name,
                title=result.title,
                status=result.status,
                detail=redactor.text(result.detail),
                remediation=redactor.text(result.remediation),
            )
        )
    return ProbeReport(
        version=__version__, target=redactor.text(observations.target), checks=tuple(results), environment=observations.environment,
        scope=DSN_SCOPE if observations.wiring.mode == "doctor" else None,
    )


# DSN mode probes the doctor's own engine, not the application's: the report says so.
DSN_SCOPE = (
    "DSN mode: checks this database and its driver path with the doctor's reference wiring (its own engine, "
    "instrumented with the commenter on), not your application's engine; --engine probes your app's own wiring"
)


def _watched(watchdog: Any, subject: str):
    """The probe's session, with its event loop watched (see `Watchdog.loop_watched`)."""
    import contextlib

    return watchdog.loop_watched(subject) if watchdog is not None else contextlib.nullcontext()


async def _observe_dsn(dsn: str | None, timeout: float, redactor: Redactor, watchdog: Any = None) -> Observations:
    from otel_sqla_doctor.live.target import parse_target

    target = parse_target(dsn, redactor)  # usage errors before anything heavy happens

    from sqlalchemy.engine import make_url

    from otel_sqla_doctor.live.session import driver_option_problem

    problem = driver_option_problem(make_url(target.url), target.driver)
    if problem is not None:  # an option the driver would choke on deep inside: say it plainly
        raise UsageError(f"{problem[0]}; {problem[1]}")

    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.ext.asyncio import create_async_engine

    from otel_sqla_doctor.live.backends import backend_for
    from otel_sqla_doctor.live.capture import SpanRecorder
    from otel_sqla_doctor.live.session import run_session
    from otel_sqla_doctor.live.wiring import engine_tracers, read_version_range

    env = read_environment()
    versions = read_version_range()
    backend = backend_for(target.backend)
    recorder = SpanRecorder()
    # The SDK reads OTEL_SDK_DISABLED and OTEL_TRACES_SAMPLER here, as it would in the app.
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(recorder)
    observations = Observations(
        target=target.display, backend=target.backend, driver=target.driver, env=env, versions=versions,
        wiring=Wiring(mode="doctor", provider="disabled" if env.sdk_disabled else "sdk"), timeout=timeout,
    )
    engine = create_async_engine(target.url, connect_args=backend.connect_args(target.driver, timeout))
    uninstrument = _instrument_probe_engine(engine, provider, observations, redactor)
    try:
        observations.wiring.tracers_on_engine = len(engine_tracers(engine.sync_engine))
        async with _watched(watchdog, "the probe's session"):
            observations.connect, observations.query, observations.cache = await run_session(
                engine, backend, target.driver, recorder, provider.get_tracer("otel-sqla-doctor"),
                timeout=timeout, redactor=redactor, restore=False,
            )
    finally:
        recorder.active = False
        if uninstrument:
            uninstrument()
        try:
            await asyncio.wait_for(engine.dispose(), timeout)
        except Exception:
            pass
    return observations


def _instrument_probe_engine(engine: Any, provider: Any, observations: Observations, redactor: Redactor):
    """Instrument the probe's own engine the documented way, with the commenter on. Outside the
    declared SQLAlchemy range (OSD502 fails) it passes skip_dep_check=True so that every other
    check still runs. Returns the undo function, or None."""
    try:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    except ImportError:
        observations.wiring.instrument_error = "opentelemetry-instrumentation-sqlalchemy is not installed"
        return None
    instrumentor = SQLAlchemyInstrumentor()
    wiring = observations.wiring
    wiring.skip_dep_check_used = not observations.versions.in_range
    wiring.commenter_enabled = True
    try:
        if instrumentor.is_instrumented_by_opentelemetry:
            # probe() called inside an already instrumented process: leave the global state alone
            # and give only our private engine a tracer of its own.
            from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
            from opentelemetry.instrumentation.sqlalchemy.version import __version__ as version
            from opentelemetry.metrics import NoOpMeterProvider

            counter = NoOpMeterProvider().get_meter("otel-sqla-doctor").create_up_down_counter("unused")
            tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", version)
            ours = EngineTracer(tracer, engine.sync_engine, counter, enable_commenter=True)
            _remove_foreign_tracers(engine.sync_engine, ours)
            return None
        instrumentor.instrument(
            engine=engine.sync_engine, tracer_provider=provider, enable_commenter=True, skip_dep_check=wiring.skip_dep_check_used
        )
        return instrumentor.uninstrument
    except Exception as exc:
        wiring.instrument_error = redactor.text(f"{type(exc).__name__}: {exc}".splitlines()[0])
        return instrumentor.uninstrument


def _remove_foreign_tracers(sync_engine: Any, ours: Any) -> None:
    """The process's global instrumentation also attached its tracers to our private engine
    (through the patched factories); detach them so the probe measures one known tracer. The
    module-level after-execute/error listeners are shared by all tracers and stay."""
    from otel_sqla_doctor.live.wiring import detach_tracers

    detach_tracers(sync_engine, keep=ours)


async def _observe_user_engine(app: Any, engine_ref: str, env: Any, timeout: float, redactor: Redactor, watchdog: Any = None) -> Observations:
    from otel_sqla_doctor.live.capture import SpanRecorder
    from otel_sqla_doctor.live.wiring import attach_to_user_provider, read_version_range

    versions = read_version_range()

    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.ext.asyncio import AsyncEngine

    from otel_sqla_doctor.live.backends import backend_for
    from otel_sqla_doctor.live.session import run_session
    from otel_sqla_doctor.live.target import BACKEND_ALIASES

    engine = app.engine
    url_text = redactor.text(engine.url.render_as_string(hide_password=True))
    backend_name = BACKEND_ALIASES.get(engine.url.get_backend_name())
    recorder = SpanRecorder()
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    wiring, parent_tracer = attach_to_user_provider(sync_engine, recorder)
    wiring.setup_error = app.setup_error
    wiring.logs = app.logs
    observations = Observations(
        target=engine_ref, backend=backend_name, driver=engine.url.get_driver_name(), env=env, versions=versions,
        wiring=wiring, timeout=timeout,
    )
    if not isinstance(engine, AsyncEngine):
        wiring.sync_engine = True
        observations.connect = ConnectOutcome(
            False,
            f"{engine_ref} is a sync Engine ({url_text}); an asyncio service needs create_async_engine with an async driver",
            "create it with create_async_engine() and an async driver (see OSD401/OSD402)",
        )
        return observations
    if backend_name is None:
        observations.connect = ConnectOutcome(False, f"{url_text}: the probe supports PostgreSQL, MySQL/MariaDB and SQLite only", None)
        return observations
    if parent_tracer is None:
        # No SDK provider globally: a private one still gives the probe query a real parent context.
        private = TracerProvider(shutdown_on_exit=False)
        private.add_span_processor(recorder)
        parent_tracer = private.get_tracer("otel-sqla-doctor")
    cache_skip = None
    if wiring.tracers_on_engine == 0:
        cache_skip = "nothing instruments this engine, so there is no comment to measure (see OSD503)"
    elif wiring.commenter_enabled is False:
        cache_skip = "the commenter is off for this engine (enable_commenter=False), so there is no comment to measure"
    try:
        async with _watched(watchdog, f"--engine {engine_ref}: the probe's session"):
            connect, query, cache = await run_session(
                engine, backend_for(backend_name), observations.driver, recorder, parent_tracer,
                timeout=timeout, redactor=redactor, restore=True, cache_skip=cache_skip,
            )
    finally:
        recorder.active = False
    observations.connect, observations.query, observations.cache = connect, query, cache
    if connect.ok:
        observations.connect = ConnectOutcome(True, f"{connect.detail} (engine {url_text})")
    return observations
