from __future__ import annotations

import re
from typing import Iterable, Optional

import libcst as cst

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.known import SET_TRACER_PROVIDER
from otel_sqla_doctor.static.paths import is_test
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid
from otel_sqla_doctor.static.summary import kwarg

# Launchers and dependencies that install a TracerProvider before the application code runs.
# `opentelemetry-instrument` (with opentelemetry-distro or a vendor distro: its configurator calls
# `set_tracer_provider` in opentelemetry.sdk._configuration._init_tracing) and `ddtrace-run`
# (Datadog's provider when DD_TRACE_OTEL_ENABLED is set). A distro in the dependencies counts too:
# it is only ever used through a launcher or `auto_instrumentation.initialize()`.
LAUNCHER = re.compile(r"(?<![\w-])(?:opentelemetry-instrument|ddtrace-run)(?![\w-])|opentelemetry-distro|opentelemetry_distro")

# Modules whose import or call sets the global TracerProvider (each calls `set_tracer_provider`):
CONFIGURATORS = (
    "opentelemetry.distro",  # OpenTelemetryConfigurator -> sdk._configuration._initialize_components
    "opentelemetry.sdk._configuration",  # _initialize_components / _OTelSDKConfigurator
    "opentelemetry.instrumentation.auto_instrumentation",  # initialize() loads distro and configurator
    "azure.monitor.opentelemetry",  # configure_azure_monitor()
    "logfire",  # logfire.configure()
    "uptrace",  # uptrace.configure_opentelemetry()
    "honeycomb.opentelemetry",  # configure_opentelemetry()
    "splunk_otel",  # init_splunk_otel() / start_tracing()
    "phoenix.otel",  # phoenix.otel.register(set_global_tracer_provider=True)
    "openlit",  # openlit.init()
    "traceloop.sdk",  # Traceloop.init()
)
# So that files which only call a configurator (and never mention opentelemetry) get indexed.
_CONFIGURATOR_WORDS = (b"logfire", b"configure_azure_monitor", b"uptrace", b"honeycomb", b"splunk_otel", b"phoenix", b"openlit", b"traceloop", b"auto_instrumentation")


class TracerProviderMissing(Rule):
    """
    Instrumentation is configured, but no TracerProvider is ever set.

    ## What it does
    Reports each `SomethingInstrumentor().instrument(...)` call (any OpenTelemetry
    instrumentor) without `tracer_provider=` when nothing in the project sets a global
    TracerProvider: no `trace.set_tracer_provider(...)` anywhere (tests included), no
    `opentelemetry-instrument` launcher (or `opentelemetry-distro`) in the repository's
    Dockerfile, Procfile, compose files, shell scripts, Makefile or dependency files, and no
    call into a known configurator that installs one:
    `configure_azure_monitor()` (azure.monitor.opentelemetry), `logfire.configure()`,
    `uptrace.configure_opentelemetry()`, `honeycomb.opentelemetry`, `splunk_otel`,
    `phoenix.otel.register()`, `openlit.init()`, `Traceloop.init()`,
    `opentelemetry.instrumentation.auto_instrumentation.initialize()` and the SDK's
    `_configuration`/`opentelemetry.distro` configurators. Importing one of those modules is
    enough for the rule to stay quiet.

    ## Why is this bad?
    Without a provider, the API's default `ProxyTracerProvider` hands out tracers whose spans
    are `NonRecordingSpan`s: `is_recording()` is False, nothing reaches any exporter, and
    sqlcommenter adds no comment to the SQL (it only runs for recording spans). The
    instrumentation is installed, raises nothing and logs nothing: the service simply never
    produces a trace.

    Setting the provider *after* instrumenting is fine: the instrumentation's tracer is a
    `ProxyTracer` that delegates to the real provider once it is set (tests/rules/test_osd202_live.py checks it).
    This rule never looks at the order, only at whether a provider is set at all.

    ## Example
    ```python
    engine = create_async_engine(DATABASE_URL)
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    ```

    ## Use instead
    ```python
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

    engine = create_async_engine(DATABASE_URL)
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    ```
    or start the service with `opentelemetry-instrument` and `opentelemetry-distro`.

    ## Known problems
    - A provider installed from outside the repository (a Kubernetes operator injecting
      auto-instrumentation, a launcher in a deployment repo, a company telemetry package) is
      invisible: list such setup functions under the `configurators` option
      (qualified names or module prefixes), or disable the rule.
    - A library that instruments but leaves the provider to the applications that use it is
      reported; disable the rule for it.
    - `instrument(**kwargs)` is assumed to pass a provider.
    - Instrument calls in test modules are not reported.

    ## References
    - reproduced by tests/rules/test_osd202_live.py in the otel-sqla-doctor repository (provider set later: spans
      not lost; no provider: non-recording spans, no sqlcommenter comment)
    - https://opentelemetry.io/docs/languages/python/instrumentation/#acquire-tracer
    """

    CODE = "OSD202"
    NAME = "tracer-provider-missing"
    FAMILY = "sdk"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "instrumentation is configured but no TracerProvider is ever set (no `set_tracer_provider`, "
        "no `tracer_provider=`, no `opentelemetry-instrument` launcher or known configurator): every "
        "span is a non-recording no-op, nothing is exported and sqlcommenter adds no comment"
    )
    HINT = (
        "create an SDK `TracerProvider` with a span processor and call "
        "`trace.set_tracer_provider(provider)` at startup (or pass `tracer_provider=`, or run under "
        "`opentelemetry-instrument` with opentelemetry-distro)"
    )
    PREFILTER = _CONFIGURATOR_WORDS
    OPTIONS = {"configurators": []}

    def visit_Module(self, node: cst.Module) -> None:
        # No per-file check: the visitor exists so that files calling a configurator are indexed.
        return None

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        if _provider_is_set(index, tuple(options.get("configurators") or ())):
            return
        if _opentelemetry_is_an_optional_extra(index):
            return  # a library: the application that installs the extra sets the provider
        for facts, site in index.all_calls():
            if is_test(facts.path) or site.star_args or not site.line:
                continue
            if kwarg(site.summary, "tracer_provider") is not None:
                continue
            instrumentor = _instrumentor_of(index, site.summary)
            if instrumentor is None:
                continue
            yield ProjectReport(
                path=facts.path,
                line=site.line,
                column=site.column,
                end_line=site.end_line,
                end_column=site.end_column,
                message=(
                    f"`{instrumentor.rsplit('.', 1)[-1]}().instrument()` is configured but no TracerProvider is "
                    "ever set (no `set_tracer_provider`, no `tracer_provider=`, no `opentelemetry-instrument` "
                    "launcher or known configurator): every span is a non-recording no-op, nothing is "
                    "exported and sqlcommenter adds no comment"
                ),
            )


def _opentelemetry_is_an_optional_extra(index) -> bool:
    """A package that offers OpenTelemetry only as an extra (`pip install dbkit[opentelemetry]`)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    for path, text in index.files.texts.items():
        if not path.endswith("pyproject.toml"):
            continue
        try:
            project = tomllib.loads(text).get("project") or {}
        except (tomllib.TOMLDecodeError, ValueError):
            continue
        dependencies, optional = project.get("dependencies"), project.get("optional-dependencies")
        if not isinstance(dependencies, (list, type(None))) or not isinstance(optional, (dict, type(None))):
            continue  # a malformed table is someone else's problem (pip says so); never a crash here
        required = " ".join(str(d) for d in dependencies or [])
        extras = " ".join(str(d) for group in (optional or {}).values() if isinstance(group, list) for d in group)
        if "opentelemetry" in extras and "opentelemetry" not in required and (project.get("scripts") or {}) == {}:
            return True
    return False


def _instrumentor_of(index, summary) -> Optional[str]:
    """`X().instrument(...)` or `inst.instrument(...)` with inst = X(), X an OpenTelemetry *Instrumentor."""
    if not summary or summary[0] != "call":
        return None
    func = summary[1]
    if func and func[0] == "attr" and func[2] == "instrument":
        receiver = func[1]
    elif func and func[0] == "ref" and func[1].endswith(".instrument"):
        receiver = ("ref", func[1][: -len(".instrument")])  # `module_level_instrumentor.instrument()`
    else:
        return None
    name: Optional[str] = None
    if receiver and receiver[0] == "call":
        name = index.qualname_of(receiver[1])
    else:
        value = index.value(receiver)
        if value and value[0] == "result":
            name = value[1]
    if name and name.startswith("opentelemetry.instrumentation.") and name.endswith("Instrumentor"):
        return name
    return None


def _provider_is_set(index, extra: tuple) -> bool:
    prefixes = CONFIGURATORS + tuple(extra)

    def configurator(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    for facts in index.modules:
        for site in facts.imports:
            if configurator(site.module) or any(configurator(f"{site.module}.{n}") for n in site.names):
                return True
        for site in facts.calls:
            if site.callee == SET_TRACER_PROVIDER or (site.callee and configurator(site.callee)):
                return True
            # `opentelemetry.trace.set_tracer_provider` reached through a project re-export.
            if site.summary and site.summary[0] == "call" and index.qualname_of(site.summary[1]) == SET_TRACER_PROVIDER:
                return True
            if site.summary and site.summary[0] == "call" and site.summary[1] and site.summary[1][0] == "attr":
                if site.summary[1][2] == "set_tracer_provider":
                    return True  # someone's own `...set_tracer_provider(...)`: assume it sets one
    return any(LAUNCHER.search(text) for text in index.files.texts.values())


TracerProviderMissing.VALID = [
    Valid(
        {
            "pyproject.toml": """
                [project]
                name = "dbkit"
                version = "1.0"
                dependencies = ["sqlalchemy[asyncio]>=2.0"]

                [project.optional-dependencies]
                opentelemetry = ["opentelemetry-instrumentation-sqlalchemy>=0.50b0"]
            """,
            "dbkit/__init__.py": "",
            "dbkit/tracing.py": """
                from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                def instrument(engine):
                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            """,
        },
        note="a library offering tracing as an extra: the application that installs it sets the provider",
    ),
    Valid(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("sqlite+aiosqlite://")
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
        trace.set_tracer_provider(TracerProvider())
        """,
        note="provider set after instrumenting: the ProxyTracer delegates (row 4a)",
    ),
    Valid(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from sqlalchemy.ext.asyncio import create_async_engine

        provider = TracerProvider()
        engine = create_async_engine("sqlite+aiosqlite://")
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider)
        """,
        note="explicit tracer_provider= (row 4d)",
    ),
    Valid(
        {
            "app/__init__.py": "",
            "app/main.py": """
                from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                from sqlalchemy.ext.asyncio import create_async_engine

                engine = create_async_engine("postgresql+asyncpg://app@db/app")
                SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            """,
            "Dockerfile": """
                FROM python:3.12-slim
                RUN pip install -r requirements.txt && opentelemetry-bootstrap -a install
                CMD ["opentelemetry-instrument", "uvicorn", "app.main:app", "--host", "0.0.0.0"]
            """,
        },
        note="started under opentelemetry-instrument",
    ),
    Valid(
        {
            "app/__init__.py": "",
            "app/observability.py": """
                from azure.monitor.opentelemetry import configure_azure_monitor

                def setup() -> None:
                    configure_azure_monitor(connection_string="InstrumentationKey=...")
            """,
            "app/main.py": """
                from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                from sqlalchemy.ext.asyncio import create_async_engine
                from app.observability import setup

                setup()
                engine = create_async_engine("postgresql+asyncpg://app@db/app")
                SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            """,
        },
        note="a known configurator sets the provider",
    ),
    Valid(
        """
        import logfire
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        logfire.configure()
        SQLAlchemyInstrumentor().instrument()
        """,
        note="logfire.configure() sets the provider",
    ),
    Valid(
        {
            "app/__init__.py": "",
            "app/main.py": """
                from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                SQLAlchemyInstrumentor().instrument()
            """,
            "requirements.txt": "opentelemetry-distro==0.66b1\nopentelemetry-exporter-otlp\n",
        },
        note="opentelemetry-distro is a dependency: it is used through a launcher",
    ),
    Valid(
        """
        class Instrumentor:
            def instrument(self): ...

        Instrumentor().instrument()
        """,
        note="not an OpenTelemetry instrumentor",
    ),
]

TracerProviderMissing.INVALID = [
    Invalid(
        """
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("sqlite+aiosqlite://")
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)  # ERROR
        """,
    ),
    Invalid(
        {
            "app/__init__.py": "",
            "app/telemetry.py": """
                from opentelemetry.instrumentation import sqlalchemy as otel_sqlalchemy
                from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor as PG
                from opentelemetry.sdk.trace import TracerProvider

                provider = TracerProvider()  # created, never installed
                db_instrumentor = otel_sqlalchemy.SQLAlchemyInstrumentor()

                def setup_tracing(engine) -> None:
                    db_instrumentor.instrument(engine=engine.sync_engine)  # ERROR
                    PG().instrument()  # ERROR
            """,
            "app/main.py": """
                from sqlalchemy.ext.asyncio import create_async_engine
                from .telemetry import setup_tracing

                engine = create_async_engine("postgresql+asyncpg://app@db/app")
                setup_tracing(engine)
            """,
            "Dockerfile": """
                FROM python:3.12-slim
                RUN pip install opentelemetry-instrumentation-sqlalchemy
                CMD ["uvicorn", "app.main:app"]
            """,
        },
        note="aliases, an instrumentor bound to a name, a provider created but never set",
    ),
    Invalid(
        {
            "app/__init__.py": "",
            "app/instrumentation.py": """
                from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                instrumentor = SQLAlchemyInstrumentor()
            """,
            "app/main.py": """
                from app.instrumentation import instrumentor

                instrumentor.instrument()  # ERROR
            """,
        },
        note="the instrumentor instance imported from another module",
    ),
]
