"""Workbench sessions, kept by the server: the cookie holds a random id and nothing else.

A session ends at logout, when its user leaves the users file or gets a new password, and at
the end of its lifetime, counted from the login (it does not slide with use). Sessions live in
the server's memory: restarting the workbench logs everyone out. Failed logins are throttled
per user name and per client address, with a back-off that doubles.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from monalia.web.passwords import TOKEN_ENV

COOKIE = "monalia_workbench"
LIFETIME_S = 12 * 3600
MAX_ANONYMOUS = 10_000  # sessions without a user (CSRF tokens of visitors); the oldest go first


@dataclass
class Session:
    id: str
    user: str | None
    expires: float  # time.time() after which the session is over
    credential: str | None = None  # a digest of the user's stored hash at login
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def remaining(self, now: float | None = None) -> int:
        return max(0, math.ceil(self.expires - (time.time() if now is None else now)))


def credential_digest(stored: str) -> str:
    """What a session remembers of its user's entry: a changed password ends the session."""
    return hashlib.sha256(stored.encode("utf-8")).hexdigest()


TOKEN_CREDENTIAL = "token:"


def token_credential() -> str:
    """What a session opened with the token remembers of it: another token ends it."""
    token = os.environ.get(TOKEN_ENV, "")
    return TOKEN_CREDENTIAL + hashlib.sha256(token.encode("utf-8")).hexdigest()


class Sessions:
    """The server's sessions, by id; thread-safe."""

    def __init__(self, lifetime_s: float = LIFETIME_S, clock: Callable[[], float] = time.time):
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._lock = threading.Lock()
        self._users: dict[str, Session] = {}
        self._anonymous: OrderedDict[str, Session] = OrderedDict()

    def start(self, user: str | None, credential: str | None = None) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32),
            user=user,
            expires=self.clock() + self.lifetime_s,
            credential=credential,
        )
        with self._lock:
            if user is None:
                self._anonymous[session.id] = session
                while len(self._anonymous) > MAX_ANONYMOUS:
                    self._anonymous.popitem(last=False)
            else:
                self._users[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._users.get(session_id) or self._anonymous.get(session_id)
            if session is not None and session.expires <= self.clock():
                self._drop(session_id)
                return None
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._drop(session_id)

    def end_user(self, user: str) -> int:
        """End every session of `user`; how many there were."""
        with self._lock:
            ended = [sid for sid, session in self._users.items() if session.user == user]
            for sid in ended:
                self._drop(sid)
        return len(ended)

    def _drop(self, session_id: str | None) -> None:
        self._users.pop(session_id or "", None)
        self._anonymous.pop(session_id or "", None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._users) + len(self._anonymous)


class LoginThrottle:
    """After `free` failed logins in a row for a user name or from an address, the next try
    waits 1 s, then 2, 4, ... up to `longest` s; a success clears the user's and the address's
    count. A try made while waiting is refused without checking the password."""

    def __init__(
        self,
        free: int = 5,
        longest: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ):
        self.free, self.longest, self.clock, self.max_keys = free, longest, clock, max_keys
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> count, until

    @staticmethod
    def keys(user: str, address: str | None) -> list[str]:
        return [f"user:{user.lower()[:64]}", f"address:{address or '?'}"]

    def wait(self, user: str, address: str | None) -> float:
        """Seconds before a try for `user` from `address` is heard; 0 when it may go now."""
        now = self.clock()
        with self._lock:
            until = max(self._failures.get(key, (0, 0.0))[1] for key in self.keys(user, address))
        return max(0.0, until - now)

    def failed(self, user: str, address: str | None) -> None:
        now = self.clock()
        with self._lock:
            for key in self.keys(user, address):
                count, _ = self._failures.pop(key, (0, 0.0))
                count += 1
                over = count - self.free
                until = now + min(self.longest, 2.0 ** (over - 1)) if over > 0 else 0.0
                self._failures[key] = (count, until)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, user: str, address: str | None) -> None:
        with self._lock:
            for key in self.keys(user, address):
                self._failures.pop(key, None)
