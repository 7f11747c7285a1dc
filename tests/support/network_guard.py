"""A guard for the security tests: any connection to an address that is not loopback, and any
name lookup but localhost's, fails the test at once, so that a regression cannot reach out."""

from __future__ import annotations

import ipaddress
import socket
from contextlib import contextmanager

LOCAL_NAMES = ("localhost", "testserver")


class OutsideConnection(AssertionError):
    """A test tried to reach a machine other than this one."""


def _loopback(host: str) -> bool:
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@contextmanager
def loopback_only(lookups: list[str] | None = None):
    """Within the block, only loopback is reachable; every name looked up is added to
    `lookups` (a name that is not local is refused as if it did not resolve)."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def check(address) -> None:
        if isinstance(address, tuple) and not _loopback(str(address[0])):
            raise OutsideConnection(f"a connection to {address[0]} was attempted")

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(address)
        return original_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(address)
        return original_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if lookups is not None:
            lookups.append(name)
        if name and not _loopback(name):
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: not looked up in the tests")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = original_connect
        socket.socket.connect_ex = original_connect_ex
        socket.getaddrinfo = original_getaddrinfo
