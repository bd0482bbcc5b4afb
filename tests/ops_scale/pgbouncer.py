"""A PgBouncer of the test's own, in transaction mode, in front of the test database's PostgreSQL.

Started on a free port of 127.0.0.1 and stopped by its PID. PgBouncer refuses to run as root: as root it
is started as `nobody`, so its configuration lives in a directory of its own that `nobody` can read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Read by tests/conftest.py before Django's apps are ready: only the standard library at import time.
EXECUTABLE = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)


class PgBouncer:
    """PgBouncer pooling by transaction for the server of `database_url`; `url` is the same database through it."""

    def __init__(self, database_url: str) -> None:
        from tests.rewards.conftest import free_port, wait_until

        assert EXECUTABLE is not None, "pgbouncer is not installed (apt-get install pgbouncer)"
        parts = urlsplit(database_url)
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="parrain-pgbouncer-"))
        self.folder.chmod(0o755)
        user = parts.username or "postgres"
        (self.folder / "users.txt").write_text(f'"{user}" ""\n')
        (self.folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.folder / 'users.txt'}\n"
            # What the scale profile runs (docker-compose.yml): a server connection serves one transaction.
            "pool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = 10\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        for path in self.folder.iterdir():
            path.chmod(0o644)
        self.log = self.folder / "pgbouncer.log"
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        self.url = urlunsplit((parts.scheme, f"{netloc}127.0.0.1:{self.port}", parts.path, "", ""))
        as_nobody = ["-u", "nobody"] if os.geteuid() == 0 else []
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [EXECUTABLE, *as_nobody, str(self.folder / "pgbouncer.ini")], stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._listening, timeout=15, interval=0.1, what=f"pgbouncer on port {self.port}")

    def _listening(self) -> bool:
        from tests.ops_scale.local_server import accepts_connections

        return accepts_connections(self.process, self.port, self.log, "pgbouncer")

    def logins(self) -> int:
        """Client connections PgBouncer took (it logs each login attempt)."""
        return self.log.read_text().count("login attempt")

    def stop(self) -> None:
        from tests.rewards.conftest import stop_process

        stop_process(self.process, timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
