from __future__ import annotations

from typing import Iterable

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.paths import is_test
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid

_GRPC_SPAN = ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter")
_HTTP_SPAN = ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter")
_EXPORT = "opentelemetry.sdk.trace.export"

# `from <module> import <name>` that raises ImportError -> where the name really lives.
# Every row is checked against the installed packages by tests/rules/test_osd204_live.py
# (the wrong import raises ImportError, each home imports).
MISPLACED: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("opentelemetry.sdk.trace.export", "OTLPSpanExporter"): (_GRPC_SPAN, _HTTP_SPAN),  # seen in public code
    ("opentelemetry.sdk.trace", "OTLPSpanExporter"): (_GRPC_SPAN, _HTTP_SPAN),
    ("opentelemetry.exporter.otlp.proto.grpc", "OTLPSpanExporter"): (_GRPC_SPAN,),
    ("opentelemetry.exporter.otlp.proto.http", "OTLPSpanExporter"): (_HTTP_SPAN,),
    ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPMetricExporter"): (
        ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
    ),
    ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPMetricExporter"): (
        ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
    ),
    **{
        (module, name): ((_EXPORT, name),)
        for module in ("opentelemetry.sdk.trace", "opentelemetry.trace")
        for name in ("BatchSpanProcessor", "SimpleSpanProcessor", "ConsoleSpanExporter")
    },
    **{
        (module, "InMemorySpanExporter"): ((f"{_EXPORT}.in_memory_span_exporter", "InMemorySpanExporter"),)
        for module in (_EXPORT, "opentelemetry.sdk.trace")
    },
    **{
        (module, "TracerProvider"): (("opentelemetry.sdk.trace", "TracerProvider"),)
        for module in ("opentelemetry", "opentelemetry.sdk", _EXPORT, "opentelemetry.sdk.resources")
    },
    **{
        ("opentelemetry.sdk.trace", name): (("opentelemetry.trace", name),)
        for name in ("set_tracer_provider", "get_tracer_provider", "get_tracer", "SpanKind")
    },
    ("opentelemetry.trace", "Resource"): (("opentelemetry.sdk.resources", "Resource"),),
    (_EXPORT, "Resource"): (("opentelemetry.sdk.resources", "Resource"),),
    ("opentelemetry.sdk.trace", "SERVICE_NAME"): (("opentelemetry.sdk.resources", "SERVICE_NAME"),),
    ("opentelemetry.propagate", "TraceContextTextMapPropagator"): (
        ("opentelemetry.trace.propagation.tracecontext", "TraceContextTextMapPropagator"),
    ),
    ("opentelemetry.instrumentation", "SQLAlchemyInstrumentor"): (
        ("opentelemetry.instrumentation.sqlalchemy", "SQLAlchemyInstrumentor"),
    ),
    ("opentelemetry.instrumentation.sqlalchemy", "SqlAlchemyInstrumentor"): (
        ("opentelemetry.instrumentation.sqlalchemy", "SQLAlchemyInstrumentor"),
    ),
    ("opentelemetry.instrumentation.asyncpg", "AsyncpgInstrumentor"): (
        ("opentelemetry.instrumentation.asyncpg", "AsyncPGInstrumentor"),
    ),
}

# Handlers that catch a failed import (as in indexer.IMPORT_FAILURE_CATCHERS).
_CATCHERS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
# Only what an application imports to *export* traces is worth a warning: libraries guard the
# bare API (`opentelemetry.trace`, `.context`, `.propagate`) as an optional dependency, and the
# API is a no-op by design when absent.
_APPLICATION_PACKAGES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "opentelemetry.instrumentation",
    "opentelemetry.distro",
)
# Helpers that libraries use to cooperate with tracing (`is_instrumentation_enabled`,
# `suppress_instrumentation`): guarding them sets nothing up or down.
_LIBRARY_HELPERS = ("opentelemetry.instrumentation.utils",)


def _distribution(module: str) -> str:
    """The PyPI distribution that provides an `opentelemetry.*` module (normalised)."""
    parts = module.split(".")
    if parts[:2] == ["opentelemetry", "sdk"]:
        return "opentelemetry-sdk"
    if parts[:2] == ["opentelemetry", "instrumentation"]:
        return "opentelemetry-instrumentation" + (f"-{parts[2].replace('_', '-')}" if len(parts) > 2 else "")
    if parts[:2] == ["opentelemetry", "exporter"]:
        return "-".join(["opentelemetry-exporter", *[p.replace("_", "-") for p in parts[2:5]]])
    if parts[:2] == ["opentelemetry", "distro"]:
        return "opentelemetry-distro"
    return "opentelemetry-api"


# Meta packages that bring another distribution with them.
_DISTRIBUTIONS_PROVIDING = {
    "opentelemetry-exporter-otlp-proto-grpc": {"opentelemetry-exporter-otlp-proto-grpc", "opentelemetry-exporter-otlp"},
    "opentelemetry-exporter-otlp-proto-http": {"opentelemetry-exporter-otlp-proto-http", "opentelemetry-exporter-otlp"},
    "opentelemetry-sdk": {"opentelemetry-sdk", "opentelemetry-distro", "opentelemetry-exporter-otlp"},
}


class TracingImportFailureSwallowed(Rule):
    """
    An OpenTelemetry import whose failure is caught and silently turns tracing off.

    ## What it does
    Reports imports of the OpenTelemetry SDK, exporters, instrumentations or distro inside a
    `try` whose `except ImportError` / `ModuleNotFoundError` / `Exception` / bare `except`
    handler quietly disables tracing (it passes, returns, sets a flag or the names to
    `None`/`False`, or defines no-op stand-ins, without raising, warning or importing an
    alternative). That is a warning.

    It is an **error** when the imported name does not exist in that module at all, such as
    `from opentelemetry.sdk.trace.export import OTLPSpanExporter` (seen in public code): the
    import can never succeed, so the fallback always runs. A table of commonly misplaced names
    and their real homes (checked against the installed packages by the live test) gives the
    right import.

    ## Why is this bad?
    When the import fails (a package missing from the production image, or a name that was
    never there), the service starts normally, logs nothing, and exports no spans. Nobody
    notices until a trace is needed. With a misplaced name it fails on every machine, so the
    tracing code behind it has never run at all.

    ## Example
    ```python
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, OTLPSpanExporter
        TRACING = True
    except ImportError:
        TRACING = False
    ```

    ## Use instead
    ```python
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    ```
    Make the packages real dependencies; if tracing must stay optional, log a warning in the
    fallback (`logger.warning("tracing disabled: %s", exc)`) so the failure is visible.

    ## Known problems
    - Guarded imports of the bare API (`opentelemetry.trace`, `opentelemetry.context`, ...) are
      not reported: libraries make OpenTelemetry an optional dependency that way, and the API
      is a no-op when absent by design. Misplaced names are reported whatever is imported.
    - Nor are guarded imports of `opentelemetry.instrumentation.utils`: libraries use its helpers
      (`is_instrumentation_enabled`, `suppress_instrumentation`) to cooperate with tracing, and
      guarding them turns no tracing off.
    - A misplaced name outside any `try` is reported too (as an error): it crashes at import.
    - Only the names in the table are checked for existence (the doctor never imports
      your dependencies); any other misspelling is missed.
    - Not reported either: a guard catching only `ImportError` around a package the project
      declares (a required dependency is installed; a declared optional extra left out was left
      out on purpose), the project's own modules, and submodules of an instrumentation the same
      file imports unguarded (a best-effort patch). A guard that catches `Exception` also hides
      a failing set-up and stays reported. Nor is a file that probes several instrumentations
      (`HAS_X = True` / `except ImportError: HAS_X = False`): it instruments whatever the service
      installed, by design.
    - A fallback that logs at `info`/`debug` level counts as silent; one that logs at
      `warning` or above, prints, warns or raises does not. Test modules get no warnings.

    ## References
    - tests/rules/test_osd204_live.py: the ImportError text of the misplaced import, and that
      the fallback leaves tracing disabled (no spans)
    - https://opentelemetry.io/docs/languages/python/exporters/
    """

    CODE = "OSD204"
    NAME = "tracing-import-failure-swallowed"
    FAMILY = "sdk"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "an OpenTelemetry import inside `try/except` whose fallback silently disables tracing: if "
        "the import fails, the service runs without spans and says nothing"
    )
    HINT = (
        "make the OpenTelemetry packages real dependencies and import them unguarded, or log a "
        "warning in the fallback so the failure is visible"
    )
    PREFILTER = ()

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        from otel_sqla_doctor.static.dependencies import all_dependencies

        declared = {dep.name for dep in all_dependencies(index.files.texts)}
        for facts in index.modules:
            # An instrumentation imported unguarded in the same file: a later guarded import of
            # its submodules is a best-effort extra (logfire patches a helper that way).
            # (An import whose handler raises is as required as an unguarded one.)
            unguarded = {
                _distribution(s.module) for s in facts.imports
                if s.module.startswith("opentelemetry.") and (not s.guarded_by or not s.fallback_disables)
            }
            # `try: import X; HAS_X = True / except ImportError: HAS_X = False` for several
            # instrumentations: the code instruments whatever is installed (a shared library, like
            # opentelemetry-bootstrap), by design.
            probed = {
                _distribution(s.module) for s in facts.imports
                if s.module.startswith("opentelemetry.instrumentation.") and s.fallback_disables
                and set(s.guarded_by) & _CATCHERS and set(s.guarded_by) & _CATCHERS <= {"ImportError", "ModuleNotFoundError"}
            }
            probing = len(probed) >= 2
            previous = warned = None  # one warning per `try` block: consecutive imports under the same guard
            for site in facts.imports:
                group = (site.scope, site.guarded_by, site.fallback_disables, site.in_handler)
                if group != previous:
                    warned = None
                previous = group
                same_try = warned == group
                if not site.module.startswith("opentelemetry") or not site.line:
                    continue
                catches = bool(_CATCHERS.intersection(site.guarded_by))
                where = dict(
                    path=facts.path,
                    line=site.line,
                    column=site.column or 1,
                    end_line=site.end_line,
                    end_column=site.end_column,
                )
                wrong = [(name, MISPLACED[(site.module, name)]) for name in site.names if (site.module, name) in MISPLACED]
                if wrong:
                    name, homes = wrong[0]
                    fixes = " or ".join(f"`from {m} import {n}`" for m, n in homes)
                    if catches:
                        outcome = (
                            "the import always fails and the `except` around it swallows the ImportError, "
                            "so this tracing setup has never run"
                        )
                    else:
                        outcome = "the import raises ImportError"
                    yield ProjectReport(
                        **where,
                        message=f"`{name}` does not exist in `{site.module}`: {outcome}",
                        hint=f"import it from where it lives: {fixes}",
                        severity=Severity.ERROR,
                    )
                    continue
                if not catches or not site.fallback_disables or same_try or is_test(facts.path):
                    continue
                if not any(site.module == p or site.module.startswith(p + ".") for p in _APPLICATION_PACKAGES):
                    continue
                if site.module in _LIBRARY_HELPERS:
                    continue
                if index.module(site.module) is not None or index.module(site.module.rsplit(".", 1)[0]) is not None:
                    continue  # the project's own module (an instrumentation package importing its sibling)
                distribution = _distribution(site.module)
                if distribution in unguarded:
                    continue
                only_import_errors = set(site.guarded_by) & _CATCHERS <= {"ImportError", "ModuleNotFoundError"}
                if only_import_errors and probing and distribution in probed:
                    continue
                if only_import_errors and declared & _DISTRIBUTIONS_PROVIDING.get(distribution, {distribution}):
                    # Declared by the project: a required dependency is there, and an optional
                    # extra that is not installed was left out on purpose. (A handler that catches
                    # every Exception also hides a failing set-up, and stays reported.)
                    continue
                caught = "/".join(n for n in site.guarded_by if n in _CATCHERS) or "Exception"
                warned = group
                yield ProjectReport(
                    **where,
                    message=(
                        f"`{site.module}` is imported inside `try/except {caught}` whose fallback silently "
                        "disables tracing: if the import fails, the service runs without spans and says nothing"
                    ),
                )


TracingImportFailureSwallowed.VALID = [
    Valid(
        """
        try:
            from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
            HAS_ASYNCPG = True
        except ImportError:
            HAS_ASYNCPG = False

        try:
            from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
            HAS_BOTOCORE = True
        except ImportError:
            HAS_BOTOCORE = False

        def setup_tracing():
            if HAS_ASYNCPG:
                AsyncPGInstrumentor().instrument()
            if HAS_BOTOCORE:
                BotocoreInstrumentor().instrument()
        """,
        note="instrumenting whatever is installed (a shared library of several services), by design",
    ),
    Valid(
        {
            "pyproject.toml": """
                [project]
                name = "dbkit"
                dependencies = ["sqlalchemy>=2.0"]
                [project.optional-dependencies]
                opentelemetry = ["opentelemetry-instrumentation-sqlalchemy>=0.50b0"]
            """,
            "dbkit/tracing.py": """
                try:
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                except ImportError:  # the [opentelemetry] extra is not installed
                    SQLAlchemyInstrumentor = None
            """,
        },
        note="a library's declared optional extra: left out on purpose when not installed",
    ),
    Valid(
        """
        from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

        try:
            from opentelemetry.instrumentation.google_genai import dict_util
            dict_util.flatten = lambda value: value
        except ImportError:
            pass
        """,
        note="a best-effort patch of an instrumentation already imported unguarded",
    ),
    Valid(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        """,
        note="unguarded imports from the right modules",
    ),
    Valid(
        """
        try:
            from opentelemetry import trace
        except ImportError:  # optional dependency of a library: the API is a no-op anyway
            trace = None
        """,
        note="a library guarding the bare API",
    ),
    Valid(
        """
        def _is_instrumentation_enabled() -> bool:
            try:
                from opentelemetry.instrumentation.utils import is_instrumentation_enabled

                return is_instrumentation_enabled()
            except (ImportError, ModuleNotFoundError):
                return False
        """,
        note="a library asking whether instrumentation is suppressed (prefect does this)",
    ),
    Valid(
        """
        import logging

        logger = logging.getLogger(__name__)
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            logger.warning("OTLP exporter unavailable, tracing disabled: %s", exc)
            OTLPSpanExporter = None
        """,
        note="the fallback warns",
    ),
    Valid(
        """
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        """,
        note="the fallback is another real exporter",
    ),
    Valid(
        """
        try:
            from opentelemetry.sdk.trace import TracerProvider
        except ImportError as exc:
            raise RuntimeError("install the 'tracing' extra") from exc
        """,
        note="the fallback raises",
    ),
    Valid(
        """
        try:
            from opentelemetry.sdk.trace import TracerProvider
        except KeyError:
            pass
        """,
        note="the handler does not catch import failures",
    ),
]

TracingImportFailureSwallowed.INVALID = [
    Invalid(
        """
        try:
            from opentelemetry.sdk.trace import TracerProvider  # ERROR
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, OTLPSpanExporter  # ERROR
            TRACING = True
        except ImportError:
            TRACING = False
        """,
        note="a silent fallback (warning), and a name that does not exist there (error)",
    ),
    Invalid(
        """
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:  # pragma: no cover - fallback for older distributions
            from opentelemetry.sdk.trace.export import OTLPSpanExporter as LegacyExporter  # ERROR
        """,
        note="a fallback that can never work (seen in public code), aliased",
    ),
    Invalid(
        """
        def setup_tracing(provider):
            try:
                from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor  # ERROR
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
                SQLAlchemyInstrumentor().instrument()
            except Exception:
                pass
        """,
        note="a broad except inside a function: one warning for the block",
    ),
    Invalid(
        {
            "app/__init__.py": "",
            "app/tracing.py": """
                try:
                    import opentelemetry.sdk.trace as sdk_trace  # ERROR
                    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
                    from opentelemetry.sdk.resources import Resource
                except:
                    sdk_trace = None

                    def setup():
                        ...
            """,
        },
        note="bare except, no-op stand-in; one warning per try block",
    ),
]
