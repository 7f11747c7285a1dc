"""Fuzzing every source parser with Hypothesis: the real fixtures, mutated (truncated, bytes
flipped, odd Unicode inserted, values of the wrong type, huge values, keys missing), go through
each source. A source must yield records or failed items for them, or refuse a whole input with
one clear error (a `MonaliaError`); never any other exception, never a hang.

The normal suite tries `QUICK` inputs per source, derandomised so every run tries the same; the
`slow` run tries `THOROUGH` random ones.
"""

from __future__ import annotations

import copy
import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import sample_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monalia.api.source import ItemOutcome, RawItem, SourceState
from monalia.errors import MonaliaError
from monalia.testing import configure

FIXTURES = Path(__file__).parent / "fixtures"
QUICK, THOROUGH = 12, 1000
SECONDS = 20  # one input taking longer than this is a hang
TRIED: dict[str, int] = {}


class Hang(Exception):
    pass


@contextmanager
def deadline(seconds: int):
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- mutations --------------------------------------------------------------------------------

ODD_TEXT = st.sampled_from(
    [
        "\u0000",
        "\ufeff",
        "\u202e",
        "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        "é" * 3,
        "𝕏",
        "\r\n",
        '"',
        "<",
        "&amp;",
        "]]>",
        "\\",
        "{{ id.path }}",
        "javascript:alert(1)",
        "file:///dev/zero",
    ]
)


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """`data` with one to four edits: cut, flipped bytes, inserted text, a span deleted or
    repeated."""
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["cut", "flip", "insert", "delete", "repeat"]))
        if edit == "cut":
            data = data[:at]
        elif edit == "flip":
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif edit == "insert":
            data = data[:at] + draw(ODD_TEXT).encode("utf-8", "replace") + data[at:]
        elif edit == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 200)) :]
        else:
            data = data[:at] + data[at : at + draw(st.integers(1, 400))] * 2 + data[at:]
    return data


HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just(10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.just("x" * 200_000),
    ODD_TEXT,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just([{"nested": [{"deeper": None}]}]),
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:5]):
            found += paths(item, (*prefix, index))
    return found


@st.composite
def mutated_structure(draw, value: Any) -> Any:
    """A copy of a JSON-like value with one to three places replaced by a value of the wrong
    kind, or removed."""
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, 3))):
        where = paths(value)
        if not where:
            return copy.deepcopy(draw(HOSTILE_VALUES))
        path = draw(st.sampled_from(where))
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = copy.deepcopy(draw(HOSTILE_VALUES))  # never one object twice
    return value


# -- running a source over one input ----------------------------------------------------------


def drain(source) -> list[ItemOutcome]:
    """Everything a source yields for its input; a whole input refused is one clear error."""
    outcomes = []
    try:
        source.open()
        try:
            for outcome in source.harvest(SourceState()):
                assert isinstance(outcome, ItemOutcome)
                # records, a failure, or none at all: left out by the source's own settings
                assert outcome.error is None or not outcome.records, outcome
                for record in outcome.records:
                    record.validate()
                outcomes.append(outcome)
        finally:
            source.close()
    except MonaliaError as exc:
        assert exc.message.strip() and "\n" not in exc.message.strip(), exc.message
    return outcomes


def parse_one(source, key: str, payload: Any) -> None:
    outcome = source.outcome(RawItem(key=key, payload=payload))
    assert outcome.records or outcome.error or outcome.records == []
    for record in outcome.records:
        record.validate()


def fuzz(name: str, strategy, check, examples: int, derandomize: bool) -> None:
    @settings(
        max_examples=examples,
        derandomize=derandomize,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value):
        TRIED[name] = TRIED.get(name, 0) + 1
        with deadline(SECONDS):
            check(value)

    run()


# -- the sources ------------------------------------------------------------------------------


def jsonl_bytes() -> bytes:
    lines = [json.dumps(r, ensure_ascii=False) for r in sample_records(6)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def nt_subset(lines: int = 120) -> bytes:
    text = (FIXTURES / "smithsonian" / "saam_lod_cidoc_crm_subset.nt").read_text(encoding="utf-8")
    return "\n".join(text.splitlines()[:lines]).encode("utf-8") + b"\n"


def joconde_text() -> bytes:
    text = (FIXTURES / "joconde" / "pop_joconde-valid-UTF-8.txt").read_bytes()
    return text[:6000]


def joconde_csv() -> bytes:
    rows = ["REF;TITR;AUTR;REPR;DMAJ;IMG"]
    for n in range(6):
        rows.append(
            f"M{n:04d};Nature morte {n};Peintre {n};cheval ; arbre (chêne);2020-01-0{n + 1};"
            f"/img/m{n}.jpg"
        )
    return ("\ufeff" + "\n".join(rows) + "\n").encode("utf-8")


def cleveland_csv(tmp: Path) -> bytes:
    from test_source_apis import cleveland_artworks, write_cleveland_csv

    write_cleveland_csv(tmp / "seed.csv", cleveland_artworks(FIXTURES)[:6], 6)
    return (tmp / "seed.csv").read_bytes()


def jocondelab_ttl(tmp: Path) -> bytes:
    from test_source_joconde import jocondelab_turtle

    return jocondelab_turtle(FIXTURES)[0].encode("utf-8")[:40_000]


FILE_SOURCES = {
    "joconde-sparql": (
        {"endpoint": "input.ttl", "with_image_only": False},
        "input.ttl",
        jocondelab_ttl,
    ),
    "jsonl": ({"path": "input.jsonl"}, "input.jsonl", lambda tmp: jsonl_bytes()),
    "rdf-file": ({"path": "input.nt"}, "input.nt", lambda tmp: nt_subset()),
    "smithsonian": ({"endpoint": "input.nt"}, "input.nt", lambda tmp: nt_subset()),
    "joconde-text": ({"path": "input.txt"}, "input.txt", lambda tmp: joconde_text()),
    "joconde-csv": ({"path": "input.csv"}, "input.csv", lambda tmp: joconde_csv()),
    "cleveland-csv": ({"path": "input.csv"}, "input.csv", cleveland_csv),
    "edm": (
        {"path": "input.xml"},
        "input.xml",
        lambda tmp: (FIXTURES / "edm" / "metis_ucd_ivrla_iiif.internal.xml").read_bytes(),
    ),
    "lido": (
        {"path": "input.xml"},
        "input.xml",
        lambda tmp: (
            FIXTURES / "lido" / "lido10_fotomarburg_fontana_del_moro.wrap3.xml"
        ).read_bytes(),
    ),
}


def europeana_items() -> list[dict]:
    page = json.loads(
        (FIXTURES / "europeana" / "openverse_europeana_search_cursor_page.json").read_text()
    )
    return page["items"][:3]


def cleveland_items() -> list[dict]:
    page = json.loads((FIXTURES / "cleveland" / "openverse_cma_api_page_subset.json").read_text())
    return page["data"][:3]


def iiif_manifest() -> dict:
    return json.loads((FIXTURES / "iiif" / "v2" / "mirador_v2_299843.json").read_text())


def behance_payload() -> dict:
    return {
        "mid": 7,
        "src": "https://mir-s3-cdn-cf.behance.net/project_modules/disp/7.jpg",
        "project_id": 99,
        "labels": {"content_cat": "positive", "media_oilpaint": "unsure"},
    }


def oai_record_pair() -> bytes:
    return (FIXTURES / "oai" / "kenom_ListRecords_lido_page1.cut3.xml").read_bytes()


PAYLOAD_SOURCES = {
    "europeana": ({"api_key_env": "FUZZ_KEY"}, lambda: europeana_items()[0]),
    "cleveland-api": ({}, lambda: cleveland_items()[0]),
    "iiif": ({"url": "https://example.org/c.json"}, iiif_manifest),
    "behance": ({"path": "bam.sqlite"}, behance_payload),
}


def check_file_source(name: str, tmp_path: Path, examples: int, derandomize: bool) -> None:
    settings_, filename, seed = FILE_SOURCES[name]
    from monalia.api.registry import default_registry

    cls = default_registry().get("source", name).cls
    data = seed(tmp_path)

    def check(mutated: bytes) -> None:
        (tmp_path / filename).write_bytes(mutated)
        drain(configure(cls, settings_, tmp_path, "fuzz").create())

    check(data)  # the unmutated input reads
    fuzz(name, mutated_bytes(data), check, examples, derandomize)


def check_payload_source(name: str, tmp_path: Path, monkeypatch, examples: int, derandomize: bool):
    settings_, seed = PAYLOAD_SOURCES[name]
    monkeypatch.setenv("FUZZ_KEY", "fuzz-key")
    from monalia.api.registry import default_registry

    cls = default_registry().get("source", name).cls
    source = configure(cls, settings_, tmp_path, "fuzz").create()
    source.state = SourceState()

    def check(payload: Any) -> None:
        parse_one(source, "item", payload)

    check(seed())
    fuzz(name, mutated_structure(seed()), check, examples, derandomize)


def check_oai(tmp_path: Path, examples: int, derandomize: bool) -> None:
    from support.oai_server import OaiServer

    from monalia.plugins.sources.oai_pmh import OaiPmhSource

    data = oai_record_pair()
    with OaiServer({None: data}) as server:

        def check(mutated: bytes) -> None:
            server.pages = {None: mutated}
            settings_ = {
                "url": server.endpoint,
                "metadata_prefix": "lido",
                "http": {"retries": 0, "timeout": 5},
            }
            drain(configure(OaiPmhSource, settings_, tmp_path, "fuzz").create())

        check(data)
        fuzz("oai-pmh", mutated_bytes(data), check, examples, derandomize)


ALL = [*FILE_SOURCES, *PAYLOAD_SOURCES, "oai-pmh"]


def run_case(name, tmp_path, monkeypatch, examples, derandomize):
    if name in FILE_SOURCES:
        check_file_source(name, tmp_path, examples, derandomize)
    elif name in PAYLOAD_SOURCES:
        check_payload_source(name, tmp_path, monkeypatch, examples, derandomize)
    else:
        check_oai(tmp_path, examples, derandomize)
    assert TRIED[name] >= examples // 2, TRIED


@pytest.mark.parametrize("name", ALL)
def test_a_mutated_input_gives_records_or_failures(name, tmp_path, monkeypatch):
    run_case(name, tmp_path, monkeypatch, QUICK, derandomize=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_many_mutated_inputs_give_records_or_failures(name, tmp_path, monkeypatch):
    run_case(name, tmp_path, monkeypatch, THOROUGH, derandomize=False)


def test_every_built_in_source_is_fuzzed():
    from monalia.api.registry import default_registry

    built_in = {p.name for p in default_registry().all("source") if p.origin.package == "monalia"}
    assert built_in <= set(ALL), built_in - set(ALL)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
