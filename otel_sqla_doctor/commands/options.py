"""The options every command shares, with one spelling and one meaning (ruff's conventions).

* `-f/--format FORMAT`: text (the default), json, and whatever else a command renders.
* `-o/--output PATH`: write the report to PATH instead of stdout (checked before any work).
* `-q/--quiet`: only the findings and the verdict; no banner, hints, passed checks or warnings.
  A run that checked nothing still says so (on stderr or in the verdict).
* `-v/--verbose`: more detail (what each command adds is in its help).
* `--exit-zero`: exit 0 even when problems are found. Usage errors still exit 2 and an interrupt
  130; `doctor trace` still passes the traced command's own failing exit code through.

typer copies the option objects per command, so sharing them here is safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

QUIET_HELP = "Only the findings and the verdict: no banner, hints, passed checks or warnings."
EXIT_ZERO_HELP = "Exit 0 even when problems are found (usage errors still exit 2, an interrupt 130)."

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]
ExitZero = Annotated[bool, typer.Option("--exit-zero", help=EXIT_ZERO_HELP)]
Output = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", metavar="PATH", show_default=False, dir_okay=False, help="Write the report to this file instead of stdout."),
]


def verbose_option(help: str) -> typer.models.OptionInfo:
    """`-v/--verbose`, with the command's own words for what it adds."""
    return typer.Option("--verbose", "-v", help=help)


def refuse_quiet_and_verbose(quiet: bool, verbose: bool) -> None:
    if quiet and verbose:
        from otel_sqla_doctor.errors import UsageError

        raise UsageError("--quiet and --verbose contradict each other: give one of them")
