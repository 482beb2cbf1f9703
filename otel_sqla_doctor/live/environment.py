"""The OTEL_* environment variables that decide whether database spans exist and where they go."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# Values of OTEL_TRACES_SAMPLER that drop every trace on their own.
DROP_ALL_SAMPLERS = {"always_off", "parentbased_always_off"}
RATIO_SAMPLERS = {"traceidratio", "parentbased_traceidratio"}


@dataclass(frozen=True)
class OtelEnvironment:
    sdk_disabled: bool
    traces_exporter: tuple[str, ...]
    sampler: str | None
    sampler_arg: str | None
    disabled_instrumentations: tuple[str, ...]
    semconv_opt_in: tuple[str, ...]
    otlp_endpoint: str | None
    otlp_endpoint_var: str | None
    otlp_protocol: str
    otlp_protocol_var: str | None

    @property
    def database_semconv(self) -> str:
        """'old' (db.system, db.statement), 'stable' (db.system.name, db.query.text) or 'dup' (both)."""
        if "database/dup" in self.semconv_opt_in:
            return "dup"
        if "database" in self.semconv_opt_in:
            return "stable"
        return "old"

    @property
    def system_keys(self) -> tuple[str, ...]:
        return {"old": ("db.system",), "stable": ("db.system.name",), "dup": ("db.system.name", "db.system")}[self.database_semconv]

    @property
    def statement_keys(self) -> tuple[str, ...]:
        return {"old": ("db.statement",), "stable": ("db.query.text",), "dup": ("db.query.text", "db.statement")}[self.database_semconv]

    @property
    def sampler_drops_everything(self) -> bool:
        if self.sampler in DROP_ALL_SAMPLERS:
            return True
        if self.sampler in RATIO_SAMPLERS and self.sampler_arg is not None:
            try:
                return float(self.sampler_arg) <= 0.0
            except ValueError:
                return False
        return False

    @property
    def sqlalchemy_disabled(self) -> bool:
        return "sqlalchemy" in self.disabled_instrumentations or "*" in self.disabled_instrumentations


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in (value or "").split(",") if part.strip())


def read_environment(environ: Mapping[str, str] | None = None) -> OtelEnvironment:
    env = os.environ if environ is None else environ
    endpoint_var = next((v for v in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") if env.get(v, "").strip()), None)
    protocol_var = next((v for v in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") if env.get(v, "").strip()), None)
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or None
    return OtelEnvironment(
        sdk_disabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true",
        traces_exporter=_split(env.get("OTEL_TRACES_EXPORTER")),
        sampler=sampler,
        sampler_arg=env.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or None,
        disabled_instrumentations=_split(env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")),
        semconv_opt_in=_split(env.get("OTEL_SEMCONV_STABILITY_OPT_IN")),
        otlp_endpoint=env[endpoint_var].strip() if endpoint_var else None,
        otlp_endpoint_var=endpoint_var,
        # The Python exporters default to gRPC (opentelemetry-distro sets it so as well).
        otlp_protocol=env[protocol_var].strip().lower() if protocol_var else "grpc",
        otlp_protocol_var=protocol_var,
    )
