"""OSD501 database-connect: the database is reachable and accepts the credentials, through an
async driver, within `--timeout`.

The session is then made read-only for every transaction (`SET SESSION CHARACTERISTICS AS
TRANSACTION READ ONLY` on PostgreSQL, `SET SESSION TRANSACTION READ ONLY` on MySQL/MariaDB,
`PRAGMA query_only` on SQLite), so also on an AUTOCOMMIT engine, and statement-bounded, before
anything else runs; the detail reports what the server then shows in force (read back), never
what was merely asked for. When the server does not show the session read-only, the probe runs no
statement and this check fails. A refused port, an unknown host, a bad password, an unknown
database and a silent server each get one line.
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
