"""Database URLs in SQLAlchemy's form (``dialect+driver://user:password@host:port/database?query``),
read without importing SQLAlchemy: reading the project file must stay quick for the commands
that answer at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote

# SQLAlchemy's own pattern (sqlalchemy.engine.url._parse_url), so both read a URL alike
PATTERN = re.compile(
    r"""
    (?P<name>[\w\+]+)://
    (?:
        (?P<username>[^:/]*)
        (?::(?P<password>[^@]*))?
    @)?
    (?:
        (?:
            \[(?P<ipv6host>[^/\?]+)\] |
            (?P<ipv4host>[^/:\?]+)
        )?
        (?::(?P<port>[^/\?]*))?
    )?
    (?:/(?P<database>[^\?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.X,
)


@dataclass(frozen=True)
class DbUrl:
    drivername: str  # dialect, or dialect+driver
    username: str | None = None
    password: str | None = None
    host: str | None = None  # an IPv6 address without its brackets
    port: str | None = None
    database: str | None = None
    query: str | None = None  # as written, after the '?'

    @property
    def backend(self) -> str:
        return self.drivername.split("+", 1)[0]

    def set(self, **changes) -> DbUrl:
        return replace(self, **changes)

    def render(self, hide_password: bool = False) -> str:
        text = f"{self.drivername}://"
        if self.username is not None:
            text += quote(self.username, safe=" +")
            if self.password is not None:
                text += ":" + ("***" if hide_password else quote(self.password, safe=" +"))
            text += "@"
        if self.host is not None:
            text += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += f":{self.port}"
        if self.database is not None:
            text += f"/{self.database}"
        if self.query is not None:
            text += f"?{self.query}"
        return text


def parse_db_url(url: str) -> DbUrl:
    """The parts of a database URL; ValueError when it is not one."""
    match = PATTERN.fullmatch(url.strip())
    if match is None:
        raise ValueError(f"{url!r} is not a database URL")
    parts = match.groupdict()
    username, password = parts["username"], parts["password"]
    return DbUrl(
        drivername=parts["name"],
        username=unquote(username) if username is not None else None,
        password=unquote(password) if password is not None else None,
        host=parts["ipv6host"] or parts["ipv4host"],
        port=parts["port"],
        database=parts["database"],
        query=parts["query"],
    )
