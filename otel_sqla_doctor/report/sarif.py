"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning (validated against the official schema)."""

from __future__ import annotations

import json

from otel_sqla_doctor import __version__
from otel_sqla_doctor.findings import ScanResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
HELP_URI = "https://github.com/otel-sqla-doctor/otel-sqla-doctor/blob/main/docs/rules.md#{anchor}"


def _rule_descriptor(rule) -> dict:
    return {
        "id": rule.CODE,
        "name": rule.NAME,
        "shortDescription": {"text": rule.summary()},
        "fullDescription": {"text": rule.section("What it does") or rule.summary()},
        "help": {"text": rule.documentation(), "markdown": rule.documentation()},
        "helpUri": HELP_URI.format(anchor=f"{rule.CODE.lower()}-{rule.NAME}"),
        "defaultConfiguration": {"level": LEVELS[rule.SEVERITY.value], "enabled": rule.DEFAULT_ENABLED},
        "properties": {"tags": [rule.FAMILY, "opentelemetry", "sqlalchemy"]},
    }


def render(result: ScanResult, **_: object) -> str:
    from otel_sqla_doctor.static.rules import all_rules

    rules = list(all_rules())
    index_of = {rule.CODE: i for i, rule in enumerate(rules)}
    results = []
    for f in result.findings:
        region = {"startLine": f.line, "startColumn": f.column}
        if f.end_line:
            region["endLine"] = f.end_line
        if f.end_column:
            region["endColumn"] = f.end_column
        entry = {
            "ruleId": f.code,
            "ruleIndex": index_of[f.code],
            "level": LEVELS[f.severity.value],
            "message": {"text": f"{f.message}" + (f" ({f.hint})" if f.hint else "")},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"},
                        "region": region,
                    }
                }
            ],
        }
        if f.fix is not None and f.fix.edits:
            entry["fixes"] = [
                {
                    "description": {"text": f.fix.description},
                    "artifactChanges": [
                        {
                            "artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"},
                            "replacements": [
                                {
                                    "deletedRegion": {
                                        "startLine": e.span.line,
                                        "startColumn": e.span.column,
                                        "endLine": e.span.end_line,
                                        "endColumn": e.span.end_column,
                                    },
                                    "insertedContent": {"text": e.replacement},
                                }
                                for e in f.fix.edits
                            ],
                        }
                    ],
                }
            ]
        results.append(entry)
    notifications = [
        {
            "level": "error",
            "message": {"text": e.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": e.path, "uriBaseId": "%SRCROOT%"}}}],
        }
        for e in result.errors
    ]
    run = {
        "tool": {
            "driver": {
                "name": "otel-sqla-doctor",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": "https://github.com/otel-sqla-doctor/otel-sqla-doctor",
                "rules": [_rule_descriptor(rule) for rule in rules],
            }
        },
        "originalUriBaseIds": {"%SRCROOT%": {"uri": "./"}},
        "results": results,
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
    }
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"
