"""Workbench users: a file of `name:scrypt$N$r$p$salt$hash` lines, passwords hashed with scrypt.

The file holds no password, only its hash; a token for scripts comes from the environment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from pathlib import Path

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
TOKEN_ENV = "MONALIA_SERVE_TOKEN"
MIN_PASSWORD = 8
MIN_TOKEN = 32  # characters: a shorter token could be guessed


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(digest)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def read_users(path: Path) -> dict[str, str]:
    """name -> stored hash; an absent file has no users. Lines that are not `name:hash` are
    ignored (comments, blanks)."""
    if not path.is_file():
        return {}
    users = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, stored = line.strip().partition(":")
        if NAME.match(name) and stored.startswith("scrypt$"):
            users[name] = stored
    return users


def _write_users(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    os.chmod(partial, 0o600)
    partial.replace(path)


def _lines_without(path: Path, name: str) -> tuple[list[str], bool]:
    """The users file's lines but `name`'s, and whether `name` had one."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    kept = [line for line in lines if line.partition(":")[0].strip() != name]
    return kept, len(kept) != len(lines)


def remove_user(path: Path, name: str) -> bool:
    """Remove a user; False when there was none of that name."""
    kept, found = _lines_without(path, name)
    if found:
        _write_users(path, kept)
    return found


def add_user(path: Path, name: str, password: str) -> bool:
    """Add or replace a user; True when the user is new."""
    if not NAME.match(name):
        raise ValueError("a user name is 1 to 64 letters, digits or . _ @ -")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    kept, found = _lines_without(path, name)
    kept.append(f"{name}:{hash_password(password)}")
    _write_users(path, kept)
    return not found


def check_token(given: str | None) -> bool:
    """Whether `given` is the token set in $MONALIA_SERVE_TOKEN (never when it is unset)."""
    expected = os.environ.get(TOKEN_ENV, "")
    if len(expected) < MIN_TOKEN or not given:
        return False  # `serve` refuses to start with a short one
    return hmac.compare_digest(given.encode(), expected.encode())
