"""A throwaway PostgreSQL cluster for the tests: the real server from Debian's packages, on a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import psycopg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*cmd: str) -> list[str]:
    # PostgreSQL refuses to run as root; as root, run it as the postgres user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[dict[str, str]]:
    """Start a fresh cluster; yields connection settings for the superuser; removes it afterwards."""
    for tool in ("initdb", "pg_ctl"):
        assert shutil.which(tool), f"{tool} not on PATH: install PostgreSQL (apt-get install postgresql)"
    root = tempfile.mkdtemp(prefix="casework-pg-")
    os.chmod(root, 0o755)
    data = os.path.join(root, "data")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    subprocess.run(_as_postgres("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres("pg_ctl", "-D", data, "-w", "-l", os.path.join(root, "log"), "-o",
                                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                                "start"), check=True, capture_output=True)
    try:
        yield {"host": "127.0.0.1", "port": str(port), "user": "postgres", "password": ""}
    finally:
        subprocess.run(_as_postgres("pg_ctl", "-D", data, "-m", "immediate", "stop"), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: dict[str, str], name: str) -> None:
    with psycopg.connect(host=server["host"], port=server["port"], user=server["user"],
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
