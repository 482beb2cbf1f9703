"""Decide the findings: one project index per project of the scan, the file rules' candidates
checked against it, and the project rules run on it.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from otel_sqla_doctor.config import Config
from otel_sqla_doctor.findings import Edit, FileError, Finding, Fix, Severity, Span
from otel_sqla_doctor.redact import mask_url
from otel_sqla_doctor.static import paths
from otel_sqla_doctor.static.analysis import internal_error
from otel_sqla_doctor.static.projects import APP_STRING, imports_by_regex, partition
from otel_sqla_doctor.static.selection import ScanPaths


class Judge:
    """Turns the per-file outcomes of a scan into its findings."""

    def __init__(self, config: Config, codes: tuple[str, ...], options: dict, where: ScanPaths) -> None:
        self.config = config
        self.codes = codes
        self.options = options
        self.where = where

    def judge(self, outcomes: dict[str, dict], pending: list, project_texts: dict[str, str]) -> tuple[list[Finding], list[FileError]]:
        """Findings and per-file errors of the whole scan. `pending`: (relative, path, bytes) of
        every file read; `outcomes`: the analysed ones' outcomes (their facts are popped)."""
        from otel_sqla_doctor.static.facts import ModuleFacts
        from otel_sqla_doctor.static.index import ProjectFiles, ProjectIndex

        modules = []
        candidates: list[tuple[str, dict]] = []
        file_errors: list[FileError] = []
        for relative, outcome in sorted(outcomes.items()):
            if outcome.get("error"):
                file_errors.append(FileError(self.where.display(relative), outcome["error"]))
                continue
            # Popped: the JSON form is not needed once the cache is written, and holding both
            # forms of every module doubled the peak memory of a large scan.
            modules.append(ModuleFacts.from_json(outcome.pop("facts")))
            candidates.extend((relative, c) for c in outcome["candidates"])
        unparsed = [(r, d) for r, _, d in pending if r not in outcomes]
        findings: list[Finding] = []
        app_references = frozenset(m.decode() for _, _, d in pending if b":" in d for m in APP_STRING.findall(d))
        for part in partition(modules, candidates, project_texts, [r for r, _, _ in pending]):
            index = ProjectIndex(
                part.modules,
                ProjectFiles(part.texts),
                imported_elsewhere=imports_by_regex([(r, d) for r, d in unparsed if part.owns(r)]),
            )
            index.async_paths = tuple(r for r, _, d in pending if b"async def" in d and part.owns(r))
            index.library_paths = frozenset(part.library)  # a shared library's modules start nothing here
            index.app_references = app_references
            found, problems = self.decide(index, part.candidates, project_rules=part.mentions_tracing())
            # A shared library's module is judged in its own project, with its own dependencies.
            findings += [f for f in found if part.owns(self.where.relative_of_display(f.path))]
            file_errors += problems
        findings = list(dict.fromkeys(findings))  # a shared library's finding, seen from two services
        return findings, file_errors

    def decide(self, index, candidates: list[tuple[str, dict]], project_rules: bool = True) -> tuple[list[Finding], list[FileError]]:
        from otel_sqla_doctor.static.rule import Requirement
        from otel_sqla_doctor.static.rules import all_rules
        from otel_sqla_doctor.static.summary import from_json

        rules = {r.CODE: r for r in all_rules() if r.CODE in self.codes}
        findings: list[Finding] = []
        problems: list[FileError] = []  # a rule's bug while deciding: an error entry, not a dead scan
        for relative, candidate in candidates:
            rule = rules.get(candidate["code"])
            if rule is None:
                continue
            requirements = [Requirement(from_json(s), p, tuple(a)) for s, p, a in candidate["requires"]]
            try:
                if not all(r.holds(index) for r in requirements):
                    continue
            except Exception as exc:  # RecursionError included: one finding's question, not the scan
                problems.append(FileError(self.where.display(relative), internal_error(f"rule {rule.CODE} (project index)", exc)))
                continue
            line, column, end_line, end_column = candidate["span"]
            fix = None
            if candidate["fix"]:
                f = candidate["fix"]
                fix = Fix(
                    description=f["description"],
                    safe=f["safe"],
                    edits=tuple(Edit(Span(*e[:4]), e[4]) for e in f["edits"]),
                    summary=f["summary"],
                )
            findings.append(self.finding(rule, relative, (line, column, end_line, end_column), candidate["message"], candidate["hint"], fix))
        # A rule may report a place from its file visitor (with a fix) and from its project check:
        # one finding, with the project check's message (it sees more) and the file visitor's fix.
        from_files = {(f.path, f.line, f.column, f.code): i for i, f in enumerate(findings)}
        for code, rule in (rules.items() if project_rules else ()):
            try:
                reports = list(rule.check_project(index, self.options.get(code, {})))
            except Exception as exc:  # one project rule's bug: an error naming it, the others still report
                problems.append(FileError(".", internal_error(f"rule {code} (project check)", exc)))
                continue
            for report in reports:
                span = (report.line, report.column, report.end_line or report.line, report.end_column or report.column)
                finding = self.finding(
                    rule, report.path, span, report.message or rule.MESSAGE, report.hint or rule.HINT, None,
                    severity=getattr(report, "severity", None),
                )
                same = from_files.get((finding.path, finding.line, finding.column, finding.code))
                if same is None:
                    findings.append(finding)
                else:
                    findings[same] = dataclasses.replace(finding, fix=findings[same].fix)
        def role(relative: str):
            found = paths.role_of(relative)
            if found is paths.PathRole.SERVICE and relative in index.script_paths and not paths.configured_for(relative):
                return paths.PathRole.SCRIPT
            return found

        kept = [
            f for f in findings
            if f.code not in self.config.ignored_for(self.where.relative_of_display(f.path))
            and (not f.path.endswith(".py") or role(self.where.relative_of_display(f.path)) in rules[f.code].REPORTS_IN)
        ]
        return kept, problems

    def finding(self, rule, relative: str, span, message: str, hint: str, fix, severity: Optional[Severity] = None) -> Finding:
        severity = Severity(self.config.severity.get(rule.CODE, (severity or rule.SEVERITY).value))
        if fix is not None:  # what is shown masks URL passwords; the edits keep the code as it is
            fix = dataclasses.replace(fix, description=mask_url(fix.description), summary=fix.summary and mask_url(fix.summary))
        return Finding(
            path=self.where.display(relative),
            line=span[0],
            column=span[1],
            code=rule.CODE,
            name=rule.NAME,
            severity=severity,
            message=mask_url(message),
            end_line=span[2],
            end_column=span[3],
            hint=mask_url(hint) if hint else None,
            fix=fix,
        )
