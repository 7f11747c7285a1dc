#!/usr/bin/env python3
"""bench/harvest.py: harvest into a fresh catalog, against the floor, dlt and the bare fetch.

(a) 50,000 Europeana-format items from pages served locally (each item its own update time);
(b) 50,000 JocondeLab notices in an Oxigraph server. Each against, in the same run:
    - the floor: a fresh process that fetches the same pages with one requests session, decodes
      them with orjson and inserts one row per item (id, JSON text) with executemany into
      SQLite, one transaction per page, nothing checked or normalised
      (bench/harvest_references.py);
    - dlt loading the same pages into SQLite through its sqlalchemy destination, a dlt resource
      with its own incremental cursor (once per run: it takes minutes; --no-dlt leaves it out);
    - the bare fetch of the same pages, nothing parsed or stored, for scale.
    Targets: within 1.5x of the floor, and faster than dlt.
(c) a 100,000-row Cleveland-format CSV; target: >= 20,000 rows/s.
(d) 50,000 oai_dc records from OAI-PMH pages served locally (100 per page, resumption tokens),
    against a bare Sickle loop over the same pages (each record parsed, nothing stored);
    target: >= 0.8x Sickle's records/s.
(e) with --sizes (e.g. 100000,1000000): the Cleveland-format CSV at each size harvested into a
    fresh PostgreSQL database (`monalia_bench_harvest` on --postgres, created and dropped), once
    each: rows/s and the harvest process's own peak memory (its VmHWM, read from /proc while it
    runs). Targets: the largest size's rate within 10 % of the smallest's, its peak memory
    within 10 % of the smallest's (the cost stays linear, the memory flat).

What is timed is `monalia harvest` as a user runs it: a fresh process on a fresh catalog
(interpreter, imports, project read, every record fetched, parsed, checked and stored). Each
harvest and its references run --repeat times (default 3), alternating; medians are compared
and each criterion is printed met or not; the last line is the worst criterion's.

Usage: .venv/bin/python bench/harvest.py [--records N] [--rows N] [--only a|b|c|d|e] [--repeat R]
       [--no-dlt] [--sizes N,M] [--postgres URL]
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
FIXTURES = REPO / "tests" / "fixtures"

from benchlib import (  # noqa: E402
    MONALIA,
    Criterion,
    alternate,
    compile_bytecode,
    timed_process,
    verdict,
)

from monalia.catalog.database import Catalog  # noqa: E402
from monalia.stages.harvest import HarvestOptions, harvest  # noqa: E402
from monalia.testing import configure  # noqa: E402

RUNS = iter(range(10**6))


def cli_harvest(workdir: Path, source: str, count: int, env: dict | None = None) -> float:
    """Seconds of `monalia harvest` in a fresh process on a new catalog; checks every record
    was stored."""
    project = workdir / f"project-{next(RUNS)}"
    project.mkdir()
    (project / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{project / "catalog.sqlite"}"\n'
        f"allow_private_addresses = true\n\n{source}",
        encoding="utf-8",
    )
    seconds, _ = timed_process([MONALIA, "-q", "-p", str(project), "harvest"], env=env)
    catalog = Catalog.open(f"sqlite:///{project / 'catalog.sqlite'}")
    from monalia.catalog.models import RecordRow

    with catalog.session() as session:
        stored = session.query(RecordRow).count()
    catalog.close()
    if stored != count:
        raise RuntimeError(f"{stored} of {count} records stored")
    return seconds


KEY = "bench-key"


def europeana_items(count: int) -> list[dict]:
    path = FIXTURES / "europeana" / "openverse_europeana_search_cursor_page.json"
    base = json.loads(path.read_text())["items"]
    items = []
    for n in range(count):
        item = copy.deepcopy(base[n % len(base)])
        item["id"] = f"{item['id']}_{n}"
        # one update time per item, as in a real collection (an incremental cursor needs them)
        stamp = datetime(2026, 1, 1) + timedelta(seconds=n)
        item["timestamp_update"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        items.append(item)
    return items


def serve_pages(pages: dict[str, bytes]):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            params = parse_qs(urlsplit(self.path).query)
            rows = int(params["rows"][0])
            body = pages["count"] if rows == 0 else pages[params["cursor"][0]]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/record/v2/search.json"


def bench_europeana(count: int, workdir: Path, repeat: int, dlt: bool = True):
    items = europeana_items(count)
    rows = 100
    pages: dict[str, bytes] = {
        "count": json.dumps({"success": True, "totalResults": count, "items": []}).encode()
    }
    cursors = ["*"]
    for start in range(0, count, rows):
        cursor = "*" if start == 0 else f"AoE{start}"
        following = f"AoE{start + rows}" if start + rows < count else None
        page = {
            "success": True,
            "totalResults": count,
            "itemsCount": rows,
            "items": items[start : start + rows],
        }
        if following:
            page["nextCursor"] = following
            cursors.append(following)
        pages[cursor] = json.dumps(page).encode()
    server, url = serve_pages(pages)
    fetched = 0

    def bare() -> float:  # the same pages, one session, nothing parsed or stored
        nonlocal fetched
        session = requests.Session()
        started = time.perf_counter()
        fetched = 0
        for cursor in cursors:
            fetched += len(
                session.get(url, params={"wskey": KEY, "rows": rows, "cursor": cursor}).content
            )
        return time.perf_counter() - started

    source = f'[sources.europeana]\nplugin = "europeana"\nendpoint = "{url}"\nrows = {rows}\n'
    try:
        samples = alternate(
            {
                "bare fetch": bare,
                "floor": lambda: reference_process(workdir, "floor", "europeana", url, count),
                "monalia harvest": lambda: cli_harvest(
                    workdir, source, count, {"EUROPEANA_API_KEY": KEY}
                ),
            },
            repeat,
            "s",
        )
        dlt_seconds = reference_process(workdir, "dlt", "europeana", url, count) if dlt else None
    finally:
        server.shutdown()
    return judge("(a) europeana", samples, dlt_seconds, count), (
        f"(a) {count / samples['monalia harvest'].median:,.0f} records/s, "
        f"floor {count / samples['floor'].median:,.0f} records/s, "
        + (f"dlt {count / dlt_seconds:,.0f} records/s, " if dlt_seconds else "")
        + f"bare fetch of {len(cursors)} pages ({fetched / 1e6:.0f} MB) "
        f"{samples['bare fetch'].median:.1f} s"
    )


def reference_process(
    workdir: Path, method: str, kind: str, url: str, count: int, queries: Path | None = None
) -> float:
    """Seconds of a reference (bench/harvest_references.py) in a fresh process; checks that it
    stored every item."""
    database = workdir / f"{method}-{next(RUNS)}.sqlite"
    args = [sys.executable, str(REPO / "bench" / "harvest_references.py"), method, kind, url]
    args += [str(database)] + ([str(queries)] if queries else [])
    seconds, done = timed_process(args)
    stored = int(done.stdout.strip().splitlines()[-1])
    if stored < count:
        raise RuntimeError(f"{method}: {stored} of {count} items stored")
    return seconds


def judge(name: str, samples, dlt_seconds: float | None, count: int) -> list[Criterion]:
    took = samples["monalia harvest"]
    print(
        f"{name}: monalia harvest {took.spread()}; floor {samples['floor'].spread()}; "
        f"bare fetch {samples['bare fetch'].spread()}"
        + (f"; dlt {dlt_seconds:.2f} s" if dlt_seconds else "")
    )
    criteria = [
        Criterion(f"{name}: harvest / floor", took.median / samples["floor"].median, 1.5, True)
    ]
    if dlt_seconds:
        criteria.append(Criterion(f"{name}: dlt / harvest", dlt_seconds / took.median, 1.0))
    return criteria


def bench_jocondelab(count: int, workdir: Path, repeat: int, dlt: bool = True):
    from support.servers import OxigraphServer, oxigraph_binary

    from monalia.net.http import SparqlClient
    from monalia.plugins.sources.joconde import JocondeSparqlSource

    classes = [f"http://data.culture.fr/thesaurus/resource/ark:/67717/T523-{n}" for n in range(40)]
    lines = []
    jcl = "http://jocondelab.iri-research.org/ns/jocondelab/"
    for n in range(count):
        notice = f"<https://jocondelab.iri-research.org/data/notice/M{n:08d}>"
        image = f"<https://jocondelab.iri-research.org/data/image/M{n:08d}>"
        lines += [
            f"{notice} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{jcl}Notice> .",
            f'{notice} <{jcl}noticeRef> "M{n:08d}" .',
            f'{notice} <{jcl}noticeTitr> "Paysage au cheval numéro {n}" .',
            f'{notice} <{jcl}noticeAutr> "COROT Jean-Baptiste Camille" .',
            f'{notice} <{jcl}noticeRepr> "paysage (cheval, arbre) ; ciel" .',
            f'{notice} <{jcl}noticeDomn> "peinture" .',
            f'{notice} <{jcl}noticeMill> "18{n % 100:02d}" .',
            f'{notice} <{jcl}noticeHasImage> "true"^^<http://www.w3.org/2001/XMLSchema#boolean> .',
            f"{notice} <{jcl}noticeReprTerm> <{classes[n % 40]}> .",
            f"{notice} <{jcl}noticeReprTerm> <{classes[(n * 7) % 40]}> .",
            f"{notice} <{jcl}noticeImage> {image} .",
            f'{image} <{jcl}noticeImagePath> "/00{n % 100:02d}/m{n:08d}_p.jpg" .',
            f'{image} <{jcl}noticeImageIsMain> "true"^^<http://www.w3.org/2001/XMLSchema#boolean> .',
        ]
    for n, uri in enumerate(classes):
        lines.append(f'<{uri}> <http://www.w3.org/2004/02/skos/core#prefLabel> "classe {n}"@fr .')
    server = OxigraphServer(oxigraph_binary())
    try:
        server.load("\n".join(lines) + "\n")
        queries: list[str] = []
        original = SparqlClient.select

        def recording(self, query):
            queries.append(query)
            return original(self, query)

        SparqlClient.select = recording
        # one harvest in this process, untimed, records the queries the bare fetch repeats
        catalog = Catalog.open(f"sqlite:///{workdir / 'joconde.sqlite'}")
        configured = configure(
            JocondeSparqlSource, {"endpoint": server.query_url, "page_size": 1000}, workdir
        )
        # in this process (no parsing worker), so that the queries are recorded here
        run = harvest(catalog, configured, options=HarvestOptions(parse_in_worker=False))
        SparqlClient.select = original
        assert run.counts["new"] == count, run.counts
        fetched = 0

        def bare() -> float:
            nonlocal fetched
            session = requests.Session()
            started = time.perf_counter()
            fetched = 0
            for query in queries:
                response = session.post(
                    server.query_url,
                    data={"query": query},
                    headers={"Accept": "application/sparql-results+json"},
                )
                fetched += len(response.content)
            return time.perf_counter() - started

        source = (
            '[sources.jocondelab]\nplugin = "joconde-sparql"\n'
            f'endpoint = "{server.query_url}"\npage_size = 1000\n'
        )
        recorded = workdir / "queries.json"
        recorded.write_text(json.dumps(queries), encoding="utf-8")
        url = server.query_url
        samples = alternate(
            {
                "bare fetch": bare,
                "floor": lambda: reference_process(workdir, "floor", "sparql", url, 0, recorded),
                "monalia harvest": lambda: cli_harvest(workdir, source, count),
            },
            repeat,
            "s",
        )
        dlt_seconds = reference_process(workdir, "dlt", "sparql", url, 0, recorded) if dlt else None
    finally:
        server.stop()
    return judge("(b) jocondelab sparql", samples, dlt_seconds, count), (
        f"(b) {count / samples['monalia harvest'].median:,.0f} records/s, "
        f"floor {count / samples['floor'].median:,.0f} records/s, "
        + (f"dlt {count / dlt_seconds:,.0f} records/s, " if dlt_seconds else "")
        + f"bare fetch of {len(queries)} result sets ({fetched / 1e6:.0f} MB) "
        f"{samples['bare fetch'].median:.1f} s"
    )


def write_cleveland_csv(path: Path, rows: int) -> int:
    """A Cleveland-format CSV of `rows` artworks; its size in bytes."""
    columns = [
        "id",
        "accession_number",
        "share_license_status",
        "title",
        "creation_date",
        "creation_date_earliest",
        "creation_date_latest",
        "creators",
        "culture",
        "technique",
        "department",
        "type",
        "url",
        "image_web",
        "image_print",
        "image_full",
        "wall_description",
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for n in range(rows):
            acc = f"{1900 + n % 100}.{n}"
            writer.writerow(
                [
                    100000 + n,
                    acc,
                    "CC0" if n % 3 else "Copyrighted",
                    f"Mount Starr King, Yosemite {n}",
                    "1866",
                    1866,
                    1866,
                    "Albert Bierstadt (American, 1830-1902)",
                    "America, 19th century",
                    "oil on canvas",
                    "American Painting and Sculpture",
                    "Painting",
                    f"https://clevelandart.org/art/{acc}",
                    f"https://openaccess-cdn.clevelandart.org/{acc}/{acc}_web.jpg",
                    f"https://openaccess-cdn.clevelandart.org/{acc}/{acc}_print.jpg",
                    f"https://openaccess-cdn.clevelandart.org/{acc}/{acc}_full.tif",
                    'During the summer of 1863, Bierstadt visited Yosemite Valley, "made sketches".',
                ]
            )
    return path.stat().st_size


def bench_cleveland_csv(rows: int, workdir: Path, repeat: int):
    path = workdir / "data.csv"
    size = write_cleveland_csv(path, rows)
    source = f'[sources.cleveland]\nplugin = "cleveland-csv"\npath = "{path}"\n'
    took = alternate({"monalia harvest": lambda: cli_harvest(workdir, source, rows)}, repeat, "s")
    took = took["monalia harvest"]
    print(f"(c) cleveland csv: monalia harvest {took.spread()}")
    return Criterion("(c) cleveland csv: rows/s", rows / took.median, 20_000, unit="rows/s"), (
        f"(c) {rows:,} rows ({size / 1e6:.0f} MB) at {rows / took.median:,.0f} rows/s"
    )


def peak_of(process: subprocess.Popen) -> float:
    """Wait for a process, reading its own peak resident memory (VmHWM, MB) and that of each of
    its child processes (the harvest's parsing worker) while it runs; the sum of the peaks."""
    peaks: dict[int, float] = {}

    def read(pid: int) -> None:
        try:
            for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = max(peaks.get(pid, 0.0), int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            pass

    while process.poll() is None:
        read(process.pid)
        try:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
        except OSError:
            children = ""
        for child in children.split():
            read(int(child))
        time.sleep(0.05)
    return sum(peaks.values())


def bench_scale(sizes: list[int], workdir: Path, server_url: str):
    """(e) The Cleveland CSV at each size into a fresh PostgreSQL database: rate and peak."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    database = url.set(database="monalia_bench_harvest").render_as_string(hide_password=False)
    rates, peaks = {}, {}
    for size in sizes:
        path = workdir / f"scale-{size}.csv"
        megabytes = write_cleveland_csv(path, size) / 1e6
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("DROP DATABASE IF EXISTS monalia_bench_harvest")
            connection.execute("CREATE DATABASE monalia_bench_harvest")
        project = workdir / f"scale-project-{size}"
        project.mkdir()
        (project / "monalia.toml").write_text(
            f'[project]\ncatalog = "{database}"\n\n'
            f'[sources.cleveland]\nplugin = "cleveland-csv"\npath = "{path}"\n',
            encoding="utf-8",
        )
        started = time.perf_counter()
        process = subprocess.Popen(
            [MONALIA, "-q", "-p", str(project), "harvest"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        peaks[size] = peak_of(process)
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(process.stderr.read().decode()[-2000:])
        with psycopg.connect(database) as connection:
            stored = connection.execute("SELECT count(*) FROM records").fetchone()[0]
        if stored != size:
            raise RuntimeError(f"{stored} of {size} records stored")
        rates[size] = size / seconds
        path.unlink()
        print(
            f"(e) {size:,} rows ({megabytes:.0f} MB) into PostgreSQL: {rates[size]:,.0f} rows/s, "
            f"peak {peaks[size]:.0f} MB"
        )
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS monalia_bench_harvest")
    small, large = min(sizes), max(sizes)
    return [
        Criterion(
            f"(e) rate at {large:,} / at {small:,} (PostgreSQL)",
            rates[large] / rates[small],
            0.9,
        ),
        Criterion(
            f"(e) peak memory at {large:,} / at {small:,}",
            peaks[large] / peaks[small],
            1.1,
            at_most=True,
        ),
    ], (
        "(e) into PostgreSQL: "
        + ", ".join(
            f"{size:,} rows {rates[size]:,.0f} rows/s peak {peaks[size]:.0f} MB" for size in sizes
        )
    )


def oai_pages(count: int, per_page: int = 100) -> dict[str | None, bytes]:
    """ListRecords pages of oai_dc records shaped as museum repositories write them."""
    pages: dict[str | None, bytes] = {}
    for start in range(0, count, per_page):
        records = []
        for n in range(start, min(count, start + per_page)):
            records.append(
                f"<record><header><identifier>oai:museum.example.org:{n}</identifier>"
                f"<datestamp>2026-0{1 + n % 9}-1{n % 10}T10:00:00Z</datestamp>"
                f"<setSpec>paintings</setSpec></header><metadata>"
                '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
                'xmlns:dc="http://purl.org/dc/elements/1.1/">'
                f'<dc:title xml:lang="en">Landscape with figures, study {n}</dc:title>'
                f"<dc:creator>Painter {n % 97}</dc:creator>"
                f"<dc:date>{1600 + n % 300}</dc:date>"
                f"<dc:subject>landscape</dc:subject><dc:subject>horse</dc:subject>"
                f"<dc:type>painting</dc:type>"
                f"<dc:description>Oil on canvas; {n % 90 + 10} x {n % 70 + 20} cm</dc:description>"
                f"<dc:publisher>Museum of Examples</dc:publisher>"
                f"<dc:rights>http://creativecommons.org/publicdomain/zero/1.0/</dc:rights>"
                f"<dc:identifier>https://museum.example.org/objects/{n}</dc:identifier>"
                f"<dc:identifier>https://images.museum.example.org/{n}.jpg</dc:identifier>"
                "</oai_dc:dc></metadata></record>"
            )
        following = f"t{start + per_page}" if start + per_page < count else ""
        pages[None if start == 0 else f"t{start}"] = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
            "<responseDate>2026-12-01T00:00:00Z</responseDate>"
            '<request verb="ListRecords">http://localhost/oai</request><ListRecords>'
            + "".join(records)
            + f'<resumptionToken completeListSize="{count}">{following}</resumptionToken>'
            "</ListRecords></OAI-PMH>"
        ).encode()
    return pages


def bench_oai(count: int, workdir: Path, repeat: int):
    from sickle import Sickle

    pages = oai_pages(count)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            params = parse_qs(urlsplit(self.path).query)
            body = pages[params.get("resumptionToken", [None])[0]]
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/oai"

    def bare() -> float:  # every record of every page read into Sickle's records
        started = time.perf_counter()
        read = sum(1 for _ in Sickle(url).ListRecords(metadataPrefix="oai_dc"))
        assert read == count, read
        return time.perf_counter() - started

    source = f'[sources.oai]\nplugin = "oai-pmh"\nurl = "{url}"\n'
    try:
        samples = alternate(
            {
                "bare Sickle loop": bare,
                "monalia harvest": lambda: cli_harvest(workdir, source, count),
            },
            repeat,
            "s",
        )
    finally:
        server.shutdown()
    took, reference = samples["monalia harvest"], samples["bare Sickle loop"]
    print(f"(d) oai-pmh: monalia harvest {took.spread()}; bare Sickle loop {reference.spread()}")
    return Criterion(
        "(d) oai-pmh: harvest records/s / Sickle's", reference.median / took.median, 0.8
    ), (
        f"(d) {count / took.median:,.0f} records/s stored vs Sickle {count / reference.median:,.0f} "
        "records/s read"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--only", choices=["a", "b", "c", "d", "e"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-dlt", action="store_true", help="leave dlt out (minutes per run)")
    parser.add_argument(
        "--sizes", help="(e): Cleveland CSV sizes into PostgreSQL, e.g. 100000,1000000"
    )
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    if not FIXTURES.is_dir() and args.only in (None, "a"):
        print(f"bench harvest: cannot measure (a): {FIXTURES} is absent", file=sys.stderr)
        return 2
    print(compile_bytecode())  # every harvest is a fresh `monalia harvest` process
    criteria, figures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for letter, measure, size in (
            ("a", bench_europeana, args.records),
            ("b", bench_jocondelab, args.records),
            ("c", bench_cleveland_csv, args.rows),
            ("d", bench_oai, args.records),
        ):
            if args.only in (None, letter):
                if letter in ("a", "b"):
                    found, figure = measure(size, workdir, args.repeat, not args.no_dlt)
                else:
                    found, figure = measure(size, workdir, args.repeat)
                criteria.extend(found if isinstance(found, list) else [found])
                figures.append(figure)
        if args.sizes and args.only in (None, "e"):
            sizes = sorted(int(size) for size in args.sizes.split(","))
            found, figure = bench_scale(sizes, workdir, args.postgres)
            criteria.extend(found)
            figures.append(figure)
    print(verdict("harvest", criteria, f"{'; '.join(figures)}; medians of {args.repeat}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
