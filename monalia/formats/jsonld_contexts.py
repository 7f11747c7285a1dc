"""JSON-LD without surprise network access: every ``@context`` (and ``@import``) a document
names by reference is either refused or fetched by monalia, through the URL policy, and put
inline before an RDF parser sees the document.

rdflib's JSON-LD parser would otherwise fetch a remote context itself, from whatever host the
file names, with no policy and no limit. A reference is refused unless the source allows
remote contexts; allowed, an ``http(s)`` context is fetched with the project's URL policy
(every hop checked, the answer bounded) and a ``file:`` or relative one read only under
``allow_file_urls``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

from monalia import jsontext
from monalia.errors import SourceUnavailable
from monalia.net.url_policy import UrlPolicy, UrlRefused

MAX_CONTEXTS = 50  # different context documents one file may pull in
MAX_DEPTH = 8  # contexts that name contexts that name contexts ...

Fetch = Callable[[str], Any]


def context_references(document: Any) -> list[str]:
    """Every context a document names by reference (strings under ``@context``/``@import``)."""
    found: list[str] = []

    def walk(value: Any, in_context: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "@context":
                    refs(item)
                elif key == "@import" and in_context and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item, in_context)
        elif isinstance(value, list):
            for item in value:
                walk(item, in_context)

    def refs(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            for item in value:
                refs(item)
        elif isinstance(value, dict):
            walk(value, in_context=True)

    walk(document, in_context=False)
    return found


def inline_contexts(document: Any, base: str, fetch: Fetch | None) -> Any:
    """`document` with every context reference replaced by the context it names.

    `fetch` gets an absolute URL and returns the parsed context document; None refuses every
    reference (`SourceUnavailable` naming the first)."""
    cache: dict[str, Any] = {}

    def load(reference: str, at: str, depth: int) -> Any:
        url = urljoin(at, reference)
        if fetch is None:
            raise SourceUnavailable(
                f"the JSON-LD names a remote @context ({url[:200]}), which is not fetched; "
                "set remote_contexts = true on the source to fetch it through the URL policy, "
                "or put the context inline"
            )
        if depth > MAX_DEPTH:
            raise SourceUnavailable(f"JSON-LD contexts nest deeper than {MAX_DEPTH} ({url[:200]})")
        if url not in cache:
            if len(cache) >= MAX_CONTEXTS:
                raise SourceUnavailable(f"the JSON-LD names more than {MAX_CONTEXTS} contexts")
            fetched = fetch(url)
            context = fetched.get("@context") if isinstance(fetched, dict) else None
            if context is None:
                raise SourceUnavailable(f"{url[:200]} is not a JSON-LD context document")
            cache[url] = None  # a context that names itself ends here
            cache[url] = resolve(context, url, depth + 1)
        if cache[url] is None:
            raise SourceUnavailable(f"the JSON-LD context {url[:200]} names itself")
        return cache[url]

    def resolve(value: Any, at: str, depth: int) -> Any:
        """A context value with its references inlined (lists flattened)."""
        if isinstance(value, str):
            return load(value, at, depth)
        if isinstance(value, list):
            out: list[Any] = []
            for item in value:
                item = resolve(item, at, depth)
                out.extend(item if isinstance(item, list) else [item])
            return out
        if isinstance(value, dict):
            value = dict(value)
            imported = value.pop("@import", None)
            value = {key: walk(item, at, depth) for key, item in value.items()}
            if isinstance(imported, str):
                base_context = load(imported, at, depth)
                if isinstance(base_context, dict):
                    return {**base_context, **value}
            return value
        return value

    def walk(value: Any, at: str, depth: int) -> Any:
        if isinstance(value, dict):
            return {
                key: resolve(item, at, depth) if key == "@context" else walk(item, at, depth)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [walk(item, at, depth) for item in value]
        return value

    return walk(document, base, 0)


def policy_fetcher(policy: UrlPolicy, http_settings: Any = None) -> Fetch:
    """Fetch a context through `policy`: http(s) with the HTTP client (every hop checked, the
    answer bounded), ``file:`` only under ``allow_file_urls``."""
    from pathlib import Path
    from urllib.parse import unquote, urlsplit

    from monalia.net.http import HttpClient, HttpSettings

    client: list[HttpClient] = []

    def fetch(url: str) -> Any:
        try:
            policy.check(url, local_source=True, resolve=True)
        except UrlRefused as exc:
            raise SourceUnavailable(f"the JSON-LD context {url[:200]} is not read: {exc}") from None
        if url.lower().startswith("file:"):
            path = Path(unquote(urlsplit(url).path))
            try:
                return jsontext.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise SourceUnavailable(f"the JSON-LD context {path} is not read: {exc}") from None
        if not client:
            settings = http_settings or HttpSettings(retries=2, max_bytes=4 * 1024 * 1024)
            client.append(HttpClient(settings, policy=policy))
        return client[0].get_json(url, headers={"Accept": "application/ld+json, application/json"})

    return fetch
