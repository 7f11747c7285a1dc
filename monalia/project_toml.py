"""Where the project file is and where its catalog is, read without validating the whole file
(no pydantic, no plugins): what `monalia runs` needs, at the speed a listing should answer.
`monalia.project` reads and checks the file in full."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from monalia.errors import ConfigError

PROJECT_FILE = "monalia.toml"
CATALOG_ENV = "MONALIA_CATALOG"
PROJECT_ENV = "MONALIA_PROJECT"
DEFAULT_CATALOG = "sqlite:///.monalia/catalog.sqlite"

# Setting names that would hold a secret in the clear.
_SECRET_KEY = re.compile(r"(^|_)(password|passwd|secret|token|api_?key|wskey|credentials?)$", re.I)


def find_secret(data: Any, loc: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], str] | None:
    """The first secret written into the project file's data: where, and what to do instead."""
    from monalia.net.url_policy import has_password, mask_userinfo

    if isinstance(data, list):
        for number, value in enumerate(data):
            found = find_secret(value, (*loc, number))
            if found is not None:
                return found
        return None
    if isinstance(data, str):
        # a password written into a URL (scheme://user:secret@host) is a secret like any other
        if "@" in data and has_password(data.strip()):
            return loc, (
                f"{mask_userinfo(data.strip())!r} holds a password: remove it from the URL and "
                "name the environment variable that holds it (password_env, or "
                "catalog_password_env for the catalog)"
            )
        return None
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        if isinstance(value, str) and value and _SECRET_KEY.search(key):
            return (*loc, key), (
                f"secrets are not stored in the project file: set {key}_env to the name of "
                "the environment variable that holds it"
            )
        found = find_secret(value, (*loc, key))
        if found is not None:
            return found
    return None


def find_project_file(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The project file named on the command line, by $MONALIA_PROJECT, or ./monalia.toml."""
    candidate = explicit or os.environ.get(PROJECT_ENV)
    if candidate:
        path = Path(candidate)
        if path.is_dir():
            path = path / PROJECT_FILE
        if not path.is_file():
            raise ConfigError(f"project file {path} does not exist")
        return path.resolve()
    path = Path.cwd() / PROJECT_FILE
    if not path.is_file():
        raise ConfigError(
            f"no {PROJECT_FILE} in {Path.cwd()}: run `monalia init` or pass --project PATH"
        )
    return path.resolve()


def resolve_path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def resolve_catalog_url(url: str, base: Path, password_env: str | None = None) -> str:
    """Make a relative SQLite path absolute (from the project folder) and add the password."""
    from monalia import masking
    from monalia.catalog.db_url import parse_db_url
    from monalia.net.url_policy import mask_userinfo

    scheme, _, rest = url.partition("://")
    if rest.split("/", 1)[0].count("@") > 1:
        # the part after the first '@' would be read as the host (and looked up): say so
        # without showing any of it
        raise ConfigError(
            f"the catalog URL ({scheme}://...) has more than one '@' before its path: a "
            "password holding '@' is written with %40 in its place"
        )
    try:
        parsed = parse_db_url(url)
    except ValueError:
        raise ConfigError(f"catalog {mask_userinfo(url)!r} is not a SQLAlchemy URL") from None
    masking.remember(parsed.password)
    changed = False
    if parsed.backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(resolve_path(base, parsed.database)))
        changed = True
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ConfigError(
                f"the catalog password is read from ${password_env}, which is not set"
            )
        masking.remember(password)
        parsed = parsed.set(password=password)
        changed = True
    return parsed.render() if changed else url


def catalog_url_of(path: Path) -> str | None:
    """The catalog URL a project file names (``$MONALIA_CATALOG`` first), read from its
    [project] table alone; None where only the full reading can say what is wrong."""
    from monalia.catalog.db_url import parse_db_url

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    section = data.get("project", {})
    if not isinstance(section, dict) or find_secret(data) is not None:
        return None  # the full reading reports it, with its line
    url = os.environ.get(CATALOG_ENV) or section.get("catalog", DEFAULT_CATALOG)
    password_env = section.get("catalog_password_env")
    if not isinstance(url, str) or not isinstance(password_env, str | None):
        return None
    try:
        if parse_db_url(url).password:
            return None  # a secret in the file: the full reading refuses it
    except ValueError:
        return None
    return resolve_catalog_url(url, path.parent, password_env)
