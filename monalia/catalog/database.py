"""The catalog: one database holding records, images, datasets, models, predictions and runs.

SQLite file by default; any SQLAlchemy URL works. A new catalog is created at the newest schema;
an older one must be upgraded with ``monalia db upgrade`` and one from a newer monalia is refused.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from monalia import jsontext
from monalia.catalog.schema import (
    SCHEMA_HEAD,
    migrations_dir,
    script_statements,
    sqlite_head_script,
)
from monalia.errors import CatalogError

__all__ = ["Catalog", "SchemaStatus", "database_error_line", "safe_url"]

SQLITE_PAGE_SIZE = 8192  # bytes, for new SQLite catalogs
SQLITE_TIMEOUT_S = 30.0  # how long a writer waits for another's lock; `?timeout=S` in the URL
_BUSY = ("database is locked", "database table is locked", "could not obtain lock")
_GONE = (
    "terminating connection",
    "server closed the connection",
    "connection already closed",
    "connection is closed",
    "could not connect",
    "connection refused",
    "consuming input failed",
    "ssl syscall error",
    "broken pipe",
    "disk i/o error",
    "unable to open database",
)


def database_error_line(exc: BaseException) -> str | None:
    """One line for a database error a run cannot go on after (the catalog busy past the
    timeout, the database gone), saying what to do; None for any other exception."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError):
        invalidated, text = exc.connection_invalidated, " ".join(str(exc.orig or exc).split())
    elif type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg", "psycopg2"):
        # raised by the driver itself (the bulk paths use its cursor directly)
        invalidated, text = False, " ".join(str(exc).split())
    else:
        return None
    lowered = text.lower()
    if any(marker in lowered for marker in _BUSY):
        return (
            "the catalog is busy: another process held its lock past the timeout "
            f"({text[:120]}); run the command again when that process is done"
        )
    if invalidated or any(marker in lowered for marker in _GONE):
        return (
            f"the catalog's database went away ({text[:160]}); run the command again: it "
            "goes on from its last commit"
        )
    return f"the catalog's database refused the work: {text[:200]}"


def safe_url(url: str) -> str:
    """The URL as it may be shown or logged: any password is masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable catalog URL>"


def alembic_config(connection=None):
    """An Alembic configuration pointing at monalia's migrations, optionally on a connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", migrations_dir())
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@dataclass(frozen=True)
class SchemaStatus:
    """Where a catalog's schema stands relative to this monalia's migrations."""

    current: str | None  # revision stored in the catalog, None when it has none
    head: str
    known: bool  # whether this monalia knows the stored revision
    empty: bool  # no tables at all: a new catalog

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def behind(self) -> bool:
        return self.known and self.current is not None and self.current != self.head


class Catalog:
    """An open catalog. Use `Catalog.open` to get one that is checked against the schema."""

    def __init__(self, url: str, engine: Engine):
        self.url = url
        self.engine = engine
        self._sessionmaker = sessionmaker(engine, expire_on_commit=False)

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str) -> Catalog:
        """Connect without checking the schema (for `monalia db` commands)."""
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise CatalogError(f"catalog URL {url!r} is not a SQLAlchemy URL") from None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogError(
                    f"cannot open catalog {safe_url(url)}: cannot create its folder "
                    f"{Path(parsed.database).parent}: {exc.strerror or exc}"
                ) from None
        try:
            # JSON columns (raw payloads of kilobytes) written and read with orjson
            options = {}
            if parsed.get_backend_name() == "postgresql":
                # a connection the server ended (a restart, pg_terminate_backend) is replaced
                # when next taken from the pool, not handed to the next transaction dead
                options["pool_pre_ping"] = True
                # no server-side prepared statements: psycopg prepares a statement run five
                # times, and PostgreSQL may then keep one generic plan for it, made while the
                # table was small (a sequential scan); as a harvest fills the table that plan
                # turns each batch's lookup by source id into a scan of every row (minutes per
                # batch at a million records). Each statement is planned for the table as it is.
                options["connect_args"] = {"prepare_threshold": None}
            engine = create_engine(
                parsed,
                future=True,
                json_serializer=jsontext.dumps,
                json_deserializer=jsontext.loads,
                **options,
            )
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise CatalogError(
                f"catalog {safe_url(url)}: no database driver for it ({exc}); "
                "for PostgreSQL install monalia[postgres]"
            ) from None
        timeout = 0.0  # how long a first connection may wait for a lock (SQLite only)
        if engine.dialect.name == "sqlite":
            try:
                timeout = float(parsed.query.get("timeout", SQLITE_TIMEOUT_S))
            except ValueError:
                raise CatalogError(
                    f"catalog {safe_url(url)}: timeout is a number of seconds"
                ) from None
            event.listen(engine, "connect", functools.partial(_sqlite_pragmas, timeout=timeout))
        catalog = cls(url, engine)
        # SQLite answers "locked" at once, without waiting out busy_timeout, while another
        # process recovers the WAL or changes the journal mode: such a first connection is
        # tried again for as long as a writer would wait
        deadline = time.monotonic() + timeout
        while True:
            try:
                with engine.connect():
                    pass
                break
            except OperationalError as exc:
                message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                if not any(busy in message for busy in _BUSY) or time.monotonic() > deadline:
                    raise CatalogError(f"cannot open catalog {safe_url(url)}: {message}") from None
                time.sleep(0.1)
        return catalog

    def _being_made(self, status: SchemaStatus) -> bool:
        """Whether the catalog looks half made: some of monalia's tables, no revision yet."""
        if status.current is not None:
            return False
        from monalia.catalog.models import Base

        tables = set(inspect(self.engine).get_table_names())
        return bool(tables) and tables <= set(Base.metadata.tables) | {"alembic_version"}

    def _made_by_another(self, wait_s: float = 30.0) -> bool:
        """Whether another process finished creating this catalog (waiting for it a while)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                if self.schema_status().up_to_date:
                    return True
            except Exception:  # its tables are still being made
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    @classmethod
    def open(cls, url: str, create: bool = True) -> Catalog:
        """Open a catalog ready for use: create a new one at head, refuse one that is not at head."""
        catalog = cls.connect(url)
        current = catalog._stamped_revision()
        if current == SCHEMA_HEAD:  # the usual case: one query
            return catalog
        if create and current is None and catalog._create_sqlite_at_head():
            return catalog
        status = catalog.schema_status()
        if status.up_to_date:
            return catalog
        if status.empty and create:
            try:
                catalog.upgrade()
            except Exception:
                # two commands creating one new catalog at once: the other one made it
                if not catalog._made_by_another():
                    raise
            return catalog
        if create and catalog._being_made(status) and catalog._made_by_another():
            return catalog  # another command was creating it at this moment
        catalog.engine.dispose()
        raise CatalogError(catalog.describe_mismatch(status))

    def describe_mismatch(self, status: SchemaStatus) -> str:
        where = f"catalog {safe_url(self.url)}"
        if status.empty:
            return f"{where} does not exist yet (run `monalia db upgrade` to create it)"
        if status.current is None:
            return (
                f"{where} holds tables but no monalia schema revision: it is not a monalia catalog"
            )
        if not status.known:
            from monalia import __version__

            return (
                f"{where} was written by a newer monalia (schema revision {status.current} is "
                f"unknown to monalia {__version__}); upgrade monalia to use it"
            )
        return (
            f"{where} is at schema revision {status.current}, this monalia needs {status.head}: "
            "run `monalia db upgrade` (back the catalog up first)"
        )

    # -- schema -----------------------------------------------------------------------------

    def schema_status(self) -> SchemaStatus:
        current = self._stamped_revision()
        if current == SCHEMA_HEAD:  # the usual case, known without loading Alembic
            return SchemaStatus(current=current, head=SCHEMA_HEAD, known=True, empty=False)
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(alembic_config())
        head = script.get_current_head()
        with self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            tables = inspect(connection).get_table_names()
        known = current is None or _revision_known(script, current)
        return SchemaStatus(current=current, head=head, known=known, empty=not tables)

    def _stamped_revision(self) -> str | None:
        """The revision stored in the catalog, or None when there is none to read."""
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        try:
            with self.engine.connect() as connection:
                rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError:
            return None  # no table yet: Alembic's path tells a new catalog from a foreign one
        return rows[0][0] if len(rows) == 1 else None

    def _create_sqlite_at_head(self) -> bool:
        """Make a new SQLite catalog from the migrations' dump (`schema.sqlite_head_script`), in
        one transaction that first checks that the database is still empty; False, changing
        nothing, when it is not SQLite, not empty, or the script is not there."""
        if self.engine.dialect.name != "sqlite":
            return False
        script = sqlite_head_script()
        if script is None:
            return False
        proxied = self.engine.raw_connection()
        try:
            connection = proxied.driver_connection
            connection.execute("BEGIN IMMEDIATE")  # a second command making it waits here
            try:
                if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    connection.rollback()
                    return False  # not new, or another command made it meanwhile
                for statement in script_statements(script):
                    connection.execute(statement)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
        finally:
            proxied.close()
        return True

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to `revision` in one transaction where the database allows it."""
        from alembic import command

        status = self.schema_status()
        if not status.known:
            raise CatalogError(self.describe_mismatch(status))
        if status.current is None and not status.empty:
            raise CatalogError(self.describe_mismatch(status))
        with self.engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)

    # -- sessions ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back otherwise."""
        session = self._sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()


def _revision_known(script, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds of error for an id it does not know
        return False


def _sqlite_pragmas(dbapi_connection, _record, timeout: float = SQLITE_TIMEOUT_S) -> None:
    # WAL lets `monalia runs` read while a harvest writes; the timeout waits out short locks.
    cursor = dbapi_connection.cursor()
    # a new file only (an existing database keeps its page size): pages of 8 KiB hold several
    # records where 4 KiB hold two, and a harvest's commits write half as many pages (measured:
    # a sixth less time per record stored)
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
