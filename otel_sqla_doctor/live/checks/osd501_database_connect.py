"""OSD501 database-connect: the database is reachable and accepts the credentials, through an
async driver, within `--timeout`.

The session is then made read-only (a read-only transaction on PostgreSQL and MySQL/MariaDB,
`PRAGMA query_only` on SQLite) and statement-bounded before anything else runs. A refused port,
an unknown host, a bad password, an unknown database and a silent server each get one line.
"""

from __future__ import annotations

from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations


class DatabaseConnect(Check):
    code = "OSD501"
    name = "database-connect"
    title = "Database reachable through an async driver"

    def run(self, obs: Observations) -> CheckResult:
        if obs.connect is None:
            return self.failed("no connection was attempted", None)
        if obs.connect.ok:
            return self.passed(obs.connect.detail)
        return self.failed(obs.connect.detail, obs.connect.remediation)
