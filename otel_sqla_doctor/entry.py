"""Console-script entry point. It handles Ctrl-C before importing the CLI, so an interrupt even
while typer and the commands are still importing ends with one line and exit code 130."""

from __future__ import annotations

from otel_sqla_doctor import interrupts


def main() -> None:
    interrupts.install()
    try:
        from otel_sqla_doctor.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        interrupts.exit_interrupted()
