"""A real PostgreSQL server for the store tests, started from the Debian binaries.

One server per pytest-xdist worker (session scope), a tmp data dir, a free port on
127.0.0.1 and a unix socket dir in tmp; each test gets its own fresh database. initdb
refuses to run as root, so under root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    raise RuntimeError(f"PostgreSQL 程序 {name} 未安装 (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Base URL (without database) of a running server; stopped at the end of the session."""
    root = Path(tempfile.mkdtemp(prefix="cd-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    subprocess.run(_as_user([_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                             "-E", "UTF8", "--locale=C.UTF-8"]),
                   check=True, capture_output=True)
    opts = f"-k {sock} -p {port} -h 127.0.0.1 -F -c fsync=off -c synchronous_commit=off"
    subprocess.run(_as_user([_bin("pg_ctl"), "-D", str(data), "-o", opts, "-w", "-t", "60",
                             "-l", str(root / "log"), "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_user([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def new_database(pg_server: str) -> str:
    """URL of a fresh, empty database on ``pg_server`` (for fixtures wider than one test)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(pg_server) + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{pg_server}/{name}"


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as psycopg itself takes it (tests that look at the server directly)."""
    return url.replace("postgresql+psycopg", "postgresql")


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty database on the session's server."""
    return new_database(pg_server)
