"""Which URLs monalia fetches: one policy for the image stage, the IIIF crawl and HTTP sources.

Every URL a source returns (an image, a manifest, a redirect's target) is someone else's words.
Fetched are ``http`` and ``https``; ``file`` only from a source whose own input is a local file,
and only when the project says ``allow_file_urls = true``. Link-local and cloud metadata
addresses are never fetched; private and loopback addresses only with ``allow_private_addresses
= true`` (images on an internal server) or when they are the host the user configured. Every
redirect hop is checked the same way, up to `max_redirects`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from monalia import masking

# Never fetched: link-local (where cloud metadata services answer) and the metadata addresses
ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud's metadata service
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
WEB_SCHEMES = ("http", "https")
# An http(s) URL whose host is letters, digits, dots and hyphens, followed by a port, a path, a
# query, a fragment or the end: no user info, no brackets, no escapes, no spaces
_PLAIN_WEB_URL = re.compile(
    r"(https?)://([a-z0-9.-]+)(?::[0-9]{1,5})?(?=[/?#]|\Z)", re.ASCII | re.IGNORECASE
)


class UrlRefused(ValueError):
    """A URL the policy does not fetch; the message says why and which setting would allow it."""


@dataclass(frozen=True)
class UrlPolicy:
    """What may be fetched; built from the ``[project]`` table of the project file."""

    allow_file: bool = False  # file: URLs, from sources whose own input is local
    allow_private: bool = False  # loopback and private network addresses
    max_redirects: int = 5

    def check(
        self,
        url: str,
        local_source: bool = False,
        trusted_host: str | None = None,
        resolve: bool = False,
    ) -> str:
        """`url` when it may be fetched; `UrlRefused` saying why when not.

        `local_source`: the URL comes from a source whose own input is a local file (only those
        may name local files). `trusted_host`: a host the user configured (a source's endpoint):
        it may be a private address.
        """
        if not isinstance(url, str) or not url.strip():
            raise UrlRefused("an empty URL")
        plain = _PLAIN_WEB_URL.match(url) if not resolve else None
        if plain is not None:
            # the usual http(s) URL with a plain host name: the host is read without urlsplit
            # (it costs more than the rest of the check, for every image of every record); the
            # pattern admits no character urlsplit would read another way
            host = plain.group(2).lower()
            _checked_host(self, host, trusted_host is not None and host == trusted_host.lower())
            return url
        try:
            parts = urlsplit(url.strip())
        except ValueError as exc:
            raise UrlRefused(f"not a URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme == "file":
            if not local_source:
                raise UrlRefused(
                    "a file: URL from a source that is not a local file; local files are read "
                    "only from a project's own local sources"
                )
            if not self.allow_file:
                raise UrlRefused(
                    "a file: URL; set allow_file_urls = true under [project] to read local files "
                    "named by a local source"
                )
            return url
        if scheme not in WEB_SCHEMES:
            shown = f"{scheme!r}" if scheme else "none"
            raise UrlRefused(f"scheme {shown} is not fetched (only http and https)")
        host = _host(parts)
        if not host:
            raise UrlRefused("no host in the URL")
        trusted = trusted_host is not None and host == trusted_host.lower()
        if resolve:
            self.check_host(host, trusted=trusted, resolve=True)
        else:  # the same few hosts come back for every record of a source
            _checked_host(self, host, trusted)
        return url

    def check_host(self, host: str, trusted: bool = False, resolve: bool = False) -> None:
        """Refuse metadata and link-local hosts always, private ones unless allowed or trusted;
        with `resolve`, a name is looked up and each of its addresses checked."""
        if host in METADATA_HOSTS:
            raise UrlRefused(f"{host} is a cloud metadata service")
        addresses = _literal(host)
        if addresses is None and (host == "localhost" or host.endswith(".localhost")):
            addresses = [ipaddress.ip_address("127.0.0.1")]
        if addresses is None and resolve:
            addresses = resolved(host)
        for address in addresses or ():
            address = embedded_ipv4(address)
            if any(address in network for network in ALWAYS_REFUSED):
                raise UrlRefused(f"{host} is a link-local or cloud metadata address")
            if _private(address) and not (self.allow_private or trusted):
                raise UrlRefused(
                    f"{host} is a private or loopback address; set allow_private_addresses = "
                    "true under [project] when images live on an internal server"
                )


# IPv6 ranges that carry an IPv4 address in their last 32 bits: IPv4-translated (RFC 2765),
# NAT64 well-known and local-use prefixes (RFC 6052, RFC 8215), IPv4-compatible (deprecated)
_IPV4_IN_LAST_32_BITS = (
    ipaddress.ip_network("::ffff:0:0:0/96"),
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::/96"),
)


def embedded_ipv4(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, -translated, -compatible,
    NAT64, 6to4), else the address itself: every check judges the address really reached."""
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if int(address) in (0, 1):  # :: and ::1 are themselves, not IPv4 0.0.0.0 and 0.0.0.1
        return address
    if any(address in network for network in _IPV4_IN_LAST_32_BITS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


@functools.lru_cache(maxsize=4096)
def _checked_host(policy: UrlPolicy, host: str, trusted: bool) -> None:
    # a refusal raises, and lru_cache keeps no result then: refused hosts are checked each time
    policy.check_host(host, trusted=trusted)


def _host(parts: SplitResult) -> str:
    try:
        return (parts.hostname or "").lower()
    except ValueError:
        return ""


def _literal(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address] | None:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        return None


def _private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    address = embedded_ipv4(address)
    return (
        address.is_private
        or address.is_loopback
        or address.is_unspecified
        or address.is_reserved
        or address in ipaddress.ip_network("100.64.0.0/10")
    )


@functools.lru_cache(maxsize=4096)
def resolved(host: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    """The addresses a name resolves to (cached: one lookup per host and process); none when
    it does not resolve (the fetch then fails on its own)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return ()
    found = []
    for info in infos:
        try:
            found.append(ipaddress.ip_address(info[4][0].split("%")[0]))
        except ValueError:
            continue
    return tuple(found)


def mask_userinfo(url: str) -> str:
    """The URL with any user and password replaced by ``***`` (for messages and records)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()


_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"<>]+@")


def mask_urls_in_text(text: str) -> str:
    """Text (a message, an error) with the user info of every URL in it, and every secret the
    project configured, replaced by ``***``."""
    text = masking.mask(text)
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text) if "@" in text else text


def mask_in_settings(value: Any) -> Any:
    """Recorded settings with the user info of every URL in them masked."""
    if isinstance(value, str):
        return mask_urls_in_text(value)
    if isinstance(value, dict):
        return {key: mask_in_settings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_in_settings(item) for item in value]
    return value


def has_password(url: str) -> bool:
    """Whether a URL carries a password in its user info (``scheme://user:secret@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.netloc) and "@" in parts.netloc and parts.password is not None
