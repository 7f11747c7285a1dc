"""Thesauri in an embedded RDF store: loading, label lookup, concept descriptions, expansion.

The store is pyoxigraph's: a thesaurus of tens of thousands of concepts loads in a second or two,
and SPARQL property paths walk its hierarchy. Each file lives in its own named graph, so loading a
file again replaces it; a manifest beside the store remembers each file's content hash, so a
project only reloads what changed. Every query comes from ``ontology/queries`` with its values
bound by substitution, never by formatting strings.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from monalia.errors import ConfigError, MonaliaError
from monalia.hashing import file_sha256

SKOS = "http://www.w3.org/2004/02/skos/core#"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
LINKS_GRAPH = "urn:monalia:thesaurus:links"
GRAPH_PREFIX = "urn:monalia:thesaurus:file:"

# Which label properties count, best first: a prefLabel match beats an altLabel one.
LABEL_KINDS = {
    SKOS + "prefLabel": "pref",
    SKOS + "altLabel": "alt",
    SKOS + "hiddenLabel": "hidden",
    RDFS_LABEL: "label",
    # a code such as Iconclass's 11H(JEROME): matched only where a labeler asks for notations
    SKOS + "notation": "notation",
}
KIND_RANK = {"pref": 0, "alt": 1, "hidden": 2, "label": 3, "notation": 4}

# The SKOS properties a class expansion may follow; the path is built from these names only.
HIERARCHY_PATH = "skos:narrower|^skos:broader"
MATCH_PROPERTIES = ("exactMatch", "closeMatch")

FORMATS = {
    ".rdf": ox.RdfFormat.RDF_XML,
    ".xml": ox.RdfFormat.RDF_XML,
    ".owl": ox.RdfFormat.RDF_XML,
    ".ttl": ox.RdfFormat.TURTLE,
    ".nt": ox.RdfFormat.N_TRIPLES,
    ".n3": ox.RdfFormat.N3,
    ".jsonld": ox.RdfFormat.JSON_LD,
    ".json": ox.RdfFormat.JSON_LD,
    ".nq": ox.RdfFormat.N_QUADS,
    ".trig": ox.RdfFormat.TRIG,
}
FORMAT_NAMES = {
    "xml": ox.RdfFormat.RDF_XML,
    "rdfxml": ox.RdfFormat.RDF_XML,
    "rdf/xml": ox.RdfFormat.RDF_XML,
    "turtle": ox.RdfFormat.TURTLE,
    "ttl": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "n-triples": ox.RdfFormat.N_TRIPLES,
    "json-ld": ox.RdfFormat.JSON_LD,
    "jsonld": ox.RdfFormat.JSON_LD,
    "nquads": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
}


@functools.cache
def query_text(name: str) -> str:
    """The text of ``ontology/queries/NAME.rq``."""
    from importlib.resources import files

    return (files("monalia.ontology") / "queries" / f"{name}.rq").read_text(encoding="utf-8")


# The lines of expand-class.rq that follow skos:related, kept only when a labeler asks for them.
_RELATED_BRANCH = re.compile(r"^\s*# related:begin$.*?^\s*# related:end$\n", re.M | re.S)

_FOLD = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "’": "'", "ʼ": "'", "`": "'"})
_SPACES = re.compile(r"\s+")


def normalize_label(text: str) -> str:
    """A label as matching sees it: no accents, no case, single spaces, one kind of apostrophe."""
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    text = "".join(char for char in text if not unicodedata.combining(char))
    return _SPACES.sub(" ", text.casefold()).strip()


def language_matches(tag: str | None, language: str | None) -> bool:
    """True when a label's language tag fits `language` (``fr`` fits ``fr-FR``; no tag fits all)."""
    if not tag or not language:
        return True
    return tag.lower().split("-")[0] == language.lower().split("-")[0]


_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def is_iri(text: str) -> bool:
    """True for an absolute IRI (``http://...``, ``urn:...``), false for a label."""
    return bool(_IRI.match(text)) and not text.startswith("builtin:")


def rdf_format(path: Path, name: str | None = None) -> ox.RdfFormat:
    """The RDF format of a file, from `name` or the file's extension (``.gz`` looked through)."""
    if name:
        try:
            return FORMAT_NAMES[name.lower()]
        except KeyError:
            raise ConfigError(
                f"unknown RDF format {name!r} (one of: {', '.join(sorted(FORMAT_NAMES))})"
            ) from None
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    raise ConfigError(
        f"cannot tell the RDF format of {path} from its name: use one of "
        f"{', '.join(sorted(FORMATS))} (optionally .gz), or set [thesaurus] format"
    )


@dataclass(frozen=True)
class LabelEntry:
    """One label of one concept."""

    concept: str
    text: str
    lang: str | None
    kind: str  # pref, alt, hidden, label


@dataclass
class LoadResult:
    """What loading one file did."""

    path: str
    graph: str
    triples: int
    concepts: int
    seconds: float
    skipped: bool = False  # unchanged since the last load


@dataclass
class ConceptInfo:
    """Everything `monalia thesaurus show` prints about one concept."""

    uri: str
    labels: list[LabelEntry] = field(default_factory=list)
    notations: list[str] = field(default_factory=list)
    schemes: list[str] = field(default_factory=list)
    broader: list[tuple[str, str | None]] = field(default_factory=list)
    narrower: list[tuple[str, str | None]] = field(default_factory=list)
    related: list[tuple[str, str | None]] = field(default_factory=list)
    matches: list[tuple[str, str, str | None]] = field(default_factory=list)  # property, uri, label


class Thesaurus:
    """One or more SKOS thesauri in an embedded store (on disk in a project, else in memory)."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory
        if directory is None:
            self.store = ox.Store()
            self._manifest: dict[str, Any] = {}
        else:
            directory.mkdir(parents=True, exist_ok=True)
            try:
                self.store = ox.Store(str(directory / "store"))
            except OSError as exc:
                raise MonaliaError(
                    f"cannot open the thesaurus store in {directory}: {exc} "
                    "(is another monalia command using it?)"
                ) from None
            self._manifest = self._read_manifest()
        self._label_cache: dict[str, list[LabelEntry]] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush and release the store (another process may then open it)."""
        if self.directory is not None:
            self.store.flush()
        del self.store

    def __enter__(self) -> Thesaurus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _manifest_path(self) -> Path | None:
        return None if self.directory is None else self.directory / "manifest.json"

    def _read_manifest(self) -> dict[str, Any]:
        path = self._manifest_path
        if path is None or not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # unreadable: every file is reloaded, which repairs it

    def _write_manifest(self) -> None:
        path = self._manifest_path
        if path is not None:
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self._manifest, indent=2), encoding="utf-8")
            temporary.replace(path)

    @property
    def files(self) -> dict[str, Any]:
        """The loaded files: path -> {sha256, graph, triples, concepts, format}."""
        return dict(self._manifest)

    def fingerprint(self) -> str:
        """A hash of the loaded files' contents and the links: changes when the thesaurus does."""
        digest = hashlib.sha256()
        for path in sorted(self._manifest):
            digest.update(self._manifest[path]["sha256"].encode())
        for quad in sorted(
            str(quad)
            for quad in self.store.quads_for_pattern(None, None, None, _graph(LINKS_GRAPH))
        ):
            digest.update(quad.encode())
        return digest.hexdigest()

    # -- loading --------------------------------------------------------------------------------

    def load(self, path: Path, format: str | None = None, force: bool = False) -> LoadResult:
        """Load one file into its own graph, replacing what an earlier load of it left."""
        path = path.resolve()
        if not path.is_file():
            raise ConfigError(f"thesaurus file {path} does not exist")
        rdf = rdf_format(path, format)
        sha = file_sha256(path)
        key = str(path)
        graph = GRAPH_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:16]
        known = self._manifest.get(key)
        if known and known["sha256"] == sha and not force:
            return LoadResult(key, graph, known["triples"], known["concepts"], 0.0, skipped=True)
        started = time.monotonic()
        target = _graph(graph)
        if self.store.contains_named_graph(target):
            self.store.remove_graph(target)
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        try:
            with opener(path, "rb") as handle:
                self.store.bulk_load(
                    handle, rdf, base_iri=path.as_uri(), to_graph=target, lenient=True
                )
        except SyntaxError as exc:
            self.store.remove_graph(target)
            raise MonaliaError(f"thesaurus file {path} is not valid {rdf}: {exc}") from None
        except (OSError, EOFError, ValueError) as exc:
            self.store.remove_graph(target)
            raise MonaliaError(f"cannot load thesaurus file {path}: {exc}") from None
        triples = self._count(target)
        concepts = self._count_concepts(graph)
        self._manifest[key] = {
            "sha256": sha,
            "graph": graph,
            "triples": triples,
            "concepts": concepts,
            "format": str(rdf),
        }
        self._write_manifest()
        self._label_cache = None
        return LoadResult(key, graph, triples, concepts, time.monotonic() - started)

    def sync(
        self, paths: Iterable[Path], format: str | None = None, force: bool = False
    ) -> list[LoadResult]:
        """Make the store hold exactly these files: load new or changed ones (all of them when
        `force`), drop the others."""
        wanted = {str(path.resolve()): path for path in paths}
        for key in list(self._manifest):
            if key not in wanted:
                self.unload(key)
        return [self.load(path, format, force) for path in wanted.values()]

    def unload(self, key: str) -> None:
        """Forget one loaded file."""
        entry = self._manifest.pop(key, None)
        if entry is not None:
            target = _graph(entry["graph"])
            if self.store.contains_named_graph(target):
                self.store.remove_graph(target)
            self._write_manifest()
            self._label_cache = None

    def set_links(self, triples: Iterable[tuple[str, str, str]]) -> int:
        """Replace the extra links (curators' mapping files) with these (s, p, o) IRIs."""
        target = _graph(LINKS_GRAPH)
        if self.store.contains_named_graph(target):
            self.store.remove_graph(target)
        quads = [
            ox.Quad(ox.NamedNode(s), ox.NamedNode(p), ox.NamedNode(o), target)
            for s, p, o in triples
        ]
        self.store.extend(quads)
        self._label_cache = None
        return len(quads)

    def add_link_file(self, path: Path, format: str | None = None) -> list[tuple[str, str, str]]:
        """The IRI triples of an RDF mapping file, to pass on to `set_links`."""
        rdf = rdf_format(path, format)
        try:
            with path.open("rb") as handle:
                parsed = list(ox.parse(handle, rdf, base_iri=path.as_uri(), lenient=True))
        except (SyntaxError, OSError, ValueError) as exc:
            raise ConfigError(f"mapping file {path} cannot be read: {exc}") from None
        return [
            (t.subject.value, t.predicate.value, t.object.value)
            for t in parsed
            if isinstance(t.subject, ox.NamedNode) and isinstance(t.object, ox.NamedNode)
        ]

    def _count(self, graph: ox.NamedNode) -> int:
        return sum(1 for _ in self.store.quads_for_pattern(None, None, None, graph))

    def _count_concepts(self, graph: str) -> int:
        rows = self._select("count-concepts", graph=ox.NamedNode(graph))
        return int(rows[0]["count"].value)

    # -- querying -------------------------------------------------------------------------------

    def _select(self, name: str, graph: ox.NamedNode | None = None, **values: Any) -> list[Any]:
        """Run ``ontology/queries/NAME.rq`` over every graph (or `graph`), values bound."""
        substitutions = {ox.Variable(key): value for key, value in values.items()}
        options: dict[str, Any] = (
            {"default_graph": graph} if graph is not None else {"use_default_graph_as_union": True}
        )
        return list(
            self.store.query(query_text(name), substitutions=substitutions or None, **options)
        )

    def concept_count(self) -> int:
        """How many concepts the store holds (across every file)."""
        return int(self._select("count-concepts")[0]["count"].value)

    def is_concept(self, uri: str) -> bool:
        """True when the store knows `uri` as a concept (typed, labelled or in a hierarchy)."""
        return bool(
            self.store.query(
                query_text("is-concept"),
                use_default_graph_as_union=True,
                substitutions={ox.Variable("concept"): ox.NamedNode(uri)},
            )
        )

    def labels(self) -> dict[str, list[LabelEntry]]:
        """Every label of every concept, by normalised text (kept until the store changes)."""
        if self._label_cache is None:
            index: dict[str, list[LabelEntry]] = defaultdict(list)
            for solution in self._select("all-labels"):
                text = solution["label"].value
                entry = LabelEntry(
                    concept=solution["concept"].value,
                    text=text.strip(),
                    lang=solution["label"].language,
                    kind=LABEL_KINDS[solution["property"].value],
                )
                index[normalize_label(text)].append(entry)
            self._label_cache = dict(index)
        return self._label_cache

    def find(
        self,
        label: str,
        language: str | None = None,
        kinds: Iterable[str] = ("pref", "alt", "hidden", "label"),
        schemes: Iterable[str] = (),
    ) -> list[LabelEntry]:
        """Concepts with this label (case, accents, spaces ignored), best kind first.

        Labels in `language` (or untagged) win; only when none exists are other languages used.
        """
        entries = [
            entry
            for entry in self.labels().get(normalize_label(label), [])
            if entry.kind in set(kinds)
        ]
        schemes = set(schemes)
        if schemes:
            entries = [entry for entry in entries if self.schemes_of(entry.concept) & schemes]
        in_language = [entry for entry in entries if language_matches(entry.lang, language)]
        chosen = in_language or entries
        return sorted(chosen, key=lambda entry: (KIND_RANK[entry.kind], entry.concept))

    def schemes_of(self, uri: str) -> set[str]:
        return {
            s["scheme"].value for s in self._select("concept-schemes", concept=ox.NamedNode(uri))
        }

    def preferred_label(self, uri: str, language: str | None = None) -> str | None:
        """The concept's prefLabel in `language` (else untagged, else any), or None."""
        rows = self._select("concept-labels", concept=ox.NamedNode(uri))
        best: tuple[int, str] | None = None
        for row in rows:
            kind = LABEL_KINDS[row["property"].value]
            lang = row["label"].language
            score = KIND_RANK[kind] * 3 + (
                0 if lang and language_matches(lang, language) else 1 if not lang else 2
            )
            text = row["label"].value.strip()
            if best is None or (score, text) < best:
                best = (score, text)
        return best[1] if best else None

    def describe(self, uri: str, language: str | None = None) -> ConceptInfo:
        """Labels, notations, schemes, broader, narrower, related and matches of one concept."""
        node = ox.NamedNode(uri)
        info = ConceptInfo(uri=uri)
        for row in self._select("concept-labels", concept=node):
            info.labels.append(
                LabelEntry(
                    uri,
                    row["label"].value.strip(),
                    row["label"].language,
                    LABEL_KINDS[row["property"].value],
                )
            )
        info.labels.sort(key=lambda entry: (KIND_RANK[entry.kind], entry.lang or "", entry.text))
        for row in self._select("concept-links", concept=node):
            relation, other = row["relation"].value, row["other"]
            if relation == "notation":
                info.notations.append(other.value)
                continue
            if relation == "scheme":
                info.schemes.append(other.value)
                continue
            named = (other.value, self.preferred_label(other.value, language))
            if relation == "broader":
                info.broader.append(named)
            elif relation == "narrower":
                info.narrower.append(named)
            elif relation == "related":
                info.related.append(named)
            else:
                info.matches.append((relation, *named))
        for values in (info.broader, info.narrower, info.related, info.matches):
            values.sort(key=lambda item: (item[-1] or "", item))
        info.broader = list(dict.fromkeys(info.broader))
        info.narrower = list(dict.fromkeys(info.narrower))
        info.related = list(dict.fromkeys(info.related))
        info.matches = list(dict.fromkeys(info.matches))
        return info

    def expansion_query(self, related: bool, follow: Iterable[str] = MATCH_PROPERTIES) -> str:
        """The SPARQL query that expands one class (``?class`` bound), as run on this store."""
        steps = [HIERARCHY_PATH]
        for name in follow:
            if name not in MATCH_PROPERTIES:
                raise ConfigError(
                    f"cannot follow skos:{name}: one of {', '.join(MATCH_PROPERTIES)}"
                )
            steps.append(f"skos:{name}|^skos:{name}")
        path = f"({'|'.join(steps)})*"
        text = query_text("expand-class").replace("{{path}}", path)
        if not related:
            text = _RELATED_BRANCH.sub("", text)
        return text

    def expand(
        self, uri: str, related: bool = False, follow: Iterable[str] = MATCH_PROPERTIES
    ) -> set[str]:
        """The concepts a class covers: itself, narrower ones, matched ones (and related ones)."""
        query = self.expansion_query(related, tuple(follow))
        solutions = self.store.query(
            query,
            use_default_graph_as_union=True,
            substitutions={ox.Variable("class"): ox.NamedNode(uri)},
        )
        return {solution["concept"].value for solution in solutions} | {uri}

    def iter_concepts(self) -> Iterator[str]:
        for solution in self._select("all-concepts"):
            yield solution["concept"].value


def _graph(iri: str) -> ox.NamedNode:
    return ox.NamedNode(iri)


def open_project_thesaurus(project, force: bool = False, progress=None) -> Thesaurus:
    """The project's thesaurus store, in sync with ``[thesaurus] files`` (all reloaded if `force`)."""
    section = project.file.thesaurus
    thesaurus = Thesaurus(project.data_dir / "thesaurus")
    try:
        paths = [resolve_data_file(project.dir, name) for name in section.files]
        results = thesaurus.sync(paths, section.format, force=force)
    except BaseException:
        thesaurus.close()
        raise
    if progress is not None:
        for result in results:
            progress(result)
    return thesaurus


def resolve_data_file(base: Path, name: str) -> Path:
    """A file named in the project file: ``builtin:NAME`` is one shipped in ``ontology/``."""
    if name.startswith("builtin:"):
        from importlib.resources import files

        shipped = files("monalia.ontology") / name.removeprefix("builtin:")
        path = Path(str(shipped))
        if not path.is_file():
            available = sorted(
                f"builtin:{p.parent.name}/{p.name}"
                for p in Path(str(files("monalia.ontology"))).glob("*/*")
                if p.suffix in {".csv", ".ttl", ".nt", ".rdf"}
            )
            raise ConfigError(
                f"{name}: monalia ships no such file (it ships: {', '.join(available)})"
            )
        return path
    path = Path(name).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise ConfigError(f"{name}: no such file ({path})")
    return path
