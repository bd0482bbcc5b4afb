"""An nginx of the test's own, balancing web processes with the `scale` profile's own configuration.

The server block is docker-compose.yml's `nginx-lb` config, as compose hands it to the container (`$$` is a
`$`), with the two upstream services and the port it listens on replaced by this machine's. Started on a free
port of 127.0.0.1 in the foreground, one process (so no user to switch to when run as root), stopped by its
PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# Read by tests/conftest.py before Django's apps are ready: only the standard library at import time.
EXECUTABLE = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
ROOT = Path(__file__).resolve().parent.parent.parent


def scale_profile_server_block(upstreams: list[int], port: int) -> str:
    """docker-compose.yml's nginx-lb config, pointed at these local ports."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    block = compose["configs"]["nginx-lb"]["content"].replace("$$", "$")
    replacements = {"listen 80;": f"listen 127.0.0.1:{port};"}
    replacements |= {f"server web-{n}:8000 ": f"server 127.0.0.1:{p} " for n, p in enumerate(upstreams, start=1)}
    for service, local in replacements.items():
        assert service in block, f"the scale profile's nginx config no longer has {service!r}: update this helper"
        block = block.replace(service, local)
    return block


class Nginx:
    def __init__(self, upstreams: list[int]) -> None:
        from tests.rewards.conftest import free_port, wait_until

        assert EXECUTABLE is not None, "nginx is not installed (apt-get install nginx)"
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="parrain-nginx-"))
        (self.folder / "default.conf").write_text(scale_profile_server_block(upstreams, self.port))
        temp = {name: self.folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir()
        (self.folder / "nginx.conf").write_text(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            f"pid {self.folder / 'nginx.pid'};\nerror_log {self.folder / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"    access_log {self.folder / 'access.log'};\n"
            + "".join(f"    {name}_temp_path {path};\n" for name, path in temp.items()).replace(
                "body_temp_path", "client_body_temp_path"
            )
            + f"    include {self.folder / 'default.conf'};\n"
            "}\n"
        )
        self.log = self.folder / "error.log"
        self.process = subprocess.Popen(
            [EXECUTABLE, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._listening, timeout=15, interval=0.1, what=f"nginx on port {self.port}")

    def _listening(self) -> bool:
        from tests.ops_scale.local_server import accepts_connections

        return accepts_connections(self.process, self.port, self.log, "nginx")

    def requests_passed(self) -> int:
        """Requests nginx logged (its access log: one line each)."""
        path = self.folder / "access.log"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def stop(self) -> None:
        from tests.rewards.conftest import stop_process

        stop_process(self.process, timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
