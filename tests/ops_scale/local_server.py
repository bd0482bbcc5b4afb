"""What the servers the tests start share: whether one is up yet, or died trying."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path


def accepts_connections(process: subprocess.Popen, port: int, log: Path, name: str) -> bool:
    """True once the server listens on 127.0.0.1:`port`; an AssertionError with its log if it exited."""
    if process.poll() is not None:
        raise AssertionError(f"{name} exited: {log.read_text()[-2000:] if log.exists() else ''}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
