"""The PostgreSQL server the tests use: the machine's, or a throwaway one of their own.

The tests create and drop a database each on a server. Which one is decided once per
session (:func:`admin_url`): ``AUDITED_OPENAI_TEST_POSTGRES`` (default: the machine's
server on 127.0.0.1:5432) if it answers; else, where PostgreSQL's binaries are, a
cluster started for the session in a temporary directory and stopped at its end; else
none, and every PostgreSQL test is skipped from one place, saying why. With
``AUDITED_OPENAI_REQUIRE_POSTGRES=1`` (as ``.ci/run`` sets it) no server is a failure.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def binaries() -> Path | None:
    """The newest PostgreSQL's bin directory on this machine (``AUDITED_OPENAI_PG_BIN``)."""
    given = os.environ.get("AUDITED_OPENAI_PG_BIN")
    found = [Path(given)] if given else sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_v)
    usable = [p for p in found if (p / "initdb").exists()]
    return usable[-1] if usable else None


def _v(bin_dir: Path) -> int:
    return int(bin_dir.parent.name) if bin_dir.parent.name.isdigit() else 0


class Cluster:
    """A PostgreSQL cluster in ``root`` of the tests' own, on a free port of 127.0.0.1.

    ``password``: scram-sha-256 authentication with it (else trust). As root, the
    server runs as the ``postgres`` user, who may not run as root.
    """

    def __init__(self, root: Path, bin_dir: Path, password: str | None = None) -> None:
        """Make the cluster (initdb) and start it."""
        self.bin, self.data, self.log = bin_dir, root / "data", root / "server.log"
        self.port = free_port()
        auth = ["-A", "trust"]
        if password is not None:
            (root / "pw").write_text(password)
            auth = ["-A", "scram-sha-256", f"--pwfile={root / 'pw'}"]
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            for made in root.iterdir():
                shutil.chown(made, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), *auth, "-U", "postgres")
        self.start()
        secret = f":{password}" if password is not None else ""
        self.url = f"postgresql://postgres{secret}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_user, *args], capture_output=True, text=True, cwd="/", check=False
        )
        if done.returncode:
            raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)

    def _ctl(self, *args: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", *args)

    def start(self) -> None:
        """Start the server (waits until it accepts connections)."""
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self._ctl("-o", options, "-l", str(self.log), "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as a crash would)."""
        self._ctl("-m", mode, "stop")


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    """Whether a PostgreSQL server takes a connection at ``url`` (within 3 s)."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


@contextlib.contextmanager
def throwaway(bin_dir: Path, password: str | None = None) -> Iterator[Cluster]:
    """A cluster in a temporary directory, gone afterwards."""
    root = Path(tempfile.mkdtemp(prefix="audited-openai-pg-"))  # the server user can enter
    try:
        cluster = Cluster(root, bin_dir, password)
        try:
            yield cluster
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@functools.cache
def admin_url() -> tuple[str | None, str]:
    """(the URL of the server the tests use, or None; a line saying which, or why none)."""
    url = os.environ.get("AUDITED_OPENAI_TEST_POSTGRES", DEFAULT)
    if answers(url):
        return url, f"PostgreSQL: the server at {url}"
    bin_dir = binaries()
    if bin_dir is None:
        return None, f"no PostgreSQL server answers at {url}, and no PostgreSQL binaries here"
    session = throwaway(bin_dir)
    try:
        cluster = session.__enter__()
    except (OSError, subprocess.CalledProcessError) as exc:
        said = getattr(exc, "stderr", "") or exc
        return None, f"no server at {url}, and one of the tests' own did not start: {said}"
    atexit.register(session.__exit__, None, None, None)
    return cluster.url, f"PostgreSQL: none at {url}; the tests started one at {cluster.url}"
