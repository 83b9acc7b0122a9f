"""A throwaway PostgreSQL cluster from the machine's binaries (initdb, pg_ctl), or
TEST_DATABASE_URL; each test gets a fresh schema on it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing
from urllib.parse import quote

import psycopg2
import pytest

from tests.services import free_port, unavailable

SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c max_connections=200 "
    # A test cluster: durability buys nothing and costs seconds.
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
)


def _first(*paths: str) -> str | None:
    return next((path for path in paths if os.path.exists(path)), None)


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A server the tests talk to: `.url`, and `.stop()`, `.start()`, `.restart()` when local."""

    def __init__(self, url: str, local: bool) -> None:
        self.url = url
        self.local = local

    def stop(self) -> None:
        raise NotImplementedError("TEST_DATABASE_URL points at a server the tests do not own")

    def start(self) -> None:
        raise NotImplementedError("TEST_DATABASE_URL points at a server the tests do not own")

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return True

    def close(self) -> None:
        """Stop for good and delete everything (local clusters)."""


class LocalCluster(PostgresServer):
    """initdb + pg_ctl in a temporary directory on a free port (as `postgres` when root)."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            unavailable(
                "PostgreSQL binaries (initdb, pg_ctl) not found and TEST_DATABASE_URL unset"
            )
        self.prefix: list[str] = []
        owner = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # initdb refuses root: run the cluster as the postgres user, in a directory
            # it can traverse (not under /root).
            import pwd

            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no 'postgres' user to run initdb as")
            runuser = shutil.which("runuser") or _first("/usr/sbin/runuser", "/sbin/runuser")
            if not runuser:
                unavailable("running as root and `runuser` is missing to start PostgreSQL")
            self.prefix = [runuser, "-u", "postgres", "--"]
        self.dir = tempfile.mkdtemp(prefix="pgtest-", dir="/tmp" if owner else None)
        if owner:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        os.chmod(self.dir, 0o700)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        super().__init__(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", local=True)
        try:
            self._run(
                self.initdb,
                "-D",
                self.data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            self.start()
        except BaseException:  # pytest's skip/fail included: leave nothing behind
            self.close()
            raise

    def _run(self, *args: str) -> None:
        try:
            done = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=90)
        except (OSError, subprocess.TimeoutExpired) as exc:
            unavailable(f"{os.path.basename(args[0])} could not run: {exc}")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            unavailable(f"{os.path.basename(args[0])} failed: {' / '.join(tail)}")

    def start(self) -> None:
        """Start (again) on the same port and data directory; returns once it accepts."""
        options = f"-p {self.port} -k {self.dir} {SERVER_OPTIONS}"
        log = os.path.join(self.dir, "server.log")
        self._run(self.pg_ctl, "-D", self.data, "-l", log, "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (sessions are terminated; clients see their connections die)."""
        self._run(self.pg_ctl, "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """True while the postmaster is up."""
        done = subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", self.data, "status"], capture_output=True
        )
        return done.returncode == 0

    def close(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run(
                [*self.prefix, self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
        shutil.rmtree(self.dir, ignore_errors=True)


def _server(allow_external: bool) -> PostgresServer:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url and allow_external:
        try:
            psycopg2.connect(url, connect_timeout=5).close()
        except psycopg2.Error as exc:
            unavailable(f"TEST_DATABASE_URL is set but unreachable ({type(exc).__name__})")
        return PostgresServer(url, local=False)
    return LocalCluster()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this test session: TEST_DATABASE_URL, or a throwaway cluster."""
    server = _server(allow_external=True)
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_cluster(request) -> Iterator[PostgresServer]:
    """A server the tests may stop and restart: `postgres` when local, else a cluster of its own."""
    shared: PostgresServer = request.getfixturevalue("postgres")
    if shared.local:
        yield shared
        return
    own = _server(allow_external=False)
    yield own
    own.close()


def with_schema(url: str, schema: str) -> str:
    """The URL with `search_path` set to `schema` (libpq's `options` parameter)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def run_sql(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Run one statement in autocommit mode; its rows (empty when it returns none)."""
    with closing(psycopg2.connect(url, connect_timeout=5)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []


def _fresh_schema(server: PostgresServer) -> Iterator[str]:
    name = "t_" + uuid.uuid4().hex[:12]
    run_sql(server.url, f"CREATE SCHEMA {name}")
    yield with_schema(server.url, name)
    if server.local and not server.running():  # a fault test failed half-way
        server.start()
    run_sql(server.url, f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A DATABASE_URL whose tables live in a fresh schema, dropped after the test."""
    yield from _fresh_schema(postgres)


@pytest.fixture
def pg_cluster_url(postgres_cluster: PostgresServer) -> Iterator[str]:
    """Like pg_url, on the server that fault tests stop and restart."""
    yield from _fresh_schema(postgres_cluster)
