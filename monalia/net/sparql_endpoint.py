"""One way to reach SPARQL: an HTTP endpoint (through the URL policy and the HTTP client), or a
store folder or RDF file queried in-process. Callers do not care which they were given."""

from __future__ import annotations

from pathlib import Path

from monalia.net.url_policy import UrlPolicy
from monalia.rdf.local_store import LocalSparqlClient, is_remote


def sparql_client(
    endpoint: str, base: Path, http=None, user=None, password=None, policy: UrlPolicy | None = None
):
    """A client for an HTTP endpoint (through `policy`: the project's URL policy), or for a
    store folder / RDF file (relative to `base`)."""
    if is_remote(endpoint):
        from monalia.net.http import SparqlClient

        return SparqlClient(endpoint, http, user, password, policy=policy)
    path = Path(endpoint.removeprefix("file://")).expanduser()
    return LocalSparqlClient(path if path.is_absolute() else base / path)
