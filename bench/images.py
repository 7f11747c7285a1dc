#!/usr/bin/env python3
"""bench/images.py: `monalia images` against a sequential download loop and the latency bound.

JPEGs of about 50 KB behind IIIF Image services on a local server (its own process) that holds
every answer back 50 ms. What is timed is `monalia images` as a user runs it: a fresh process
(interpreter, imports, the crawl processes started, every image checked, stored by hash, the
catalog updated), at 2,000 and at 10,000 images, each run on a fresh catalog. References:
- a sequential `requests.get` loop over the same URLs, nothing checked or stored (how the
  Europeana pilot downloads), timed on --sample images;
- the bound that latency and concurrency set: per-host concurrency / latency.
Each size and the sequential loop run --repeat times (default 3), interleaved; medians compared.
Targets: >= 10x the sequential loop at each size; >= 0.8x the bound over the whole run at the
largest size. Each criterion is printed met or not; the last line is the worst one's.

Usage: .venv/bin/python bench/images.py [--sizes 2000,10000] [--concurrency C] [--latency S]
       [--sample N] [--repeat R] [--processes P] [--no-autothrottle]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import random
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import requests
from benchlib import MONALIA, Criterion, alternate, timed_process, verdict
from PIL import Image, ImageDraw, ImageFilter

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, RecordRow, utcnow

SEQUENTIAL_TARGET = 10.0
BOUND_TARGET = 0.8


def base_images(count: int = 16) -> list[bytes]:
    """Photographs' worth of JPEG: textured pictures of about 50 KB at 512 x 384."""
    rng = random.Random(3)
    out = []
    for n in range(count):
        image = Image.effect_noise((512, 384), 40 + n).convert("RGB")
        pen = ImageDraw.Draw(image)
        for _ in range(12):
            x, y = rng.randrange(512), rng.randrange(384)
            pen.ellipse(
                (x, y, x + rng.randrange(40, 200), y + rng.randrange(40, 200)),
                fill=tuple(rng.randrange(256) for _ in range(3)),
            )
        image = image.filter(ImageFilter.GaussianBlur(0.8))
        for quality in range(90, 20, -5):
            data = io.BytesIO()
            image.save(data, "JPEG", quality=quality)
            if data.tell() <= 55_000:
                break
        out.append(data.getvalue())
    return out


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The JPEG with a comment segment: other bytes, same picture (every image its own hash)."""
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


async def answer(reader, writer, images: list[bytes], latency: float) -> None:
    """HTTP/1.1 keep-alive: each GET /iiif/N/... answered with image N after `latency`."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            number = int(head.split(b" ", 2)[1].split(b"/")[2])
            await asyncio.sleep(latency)
            body = images[number]
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def run_server(images: list[bytes], latency: float, port, ready) -> None:
    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: answer(r, w, images, latency), "127.0.0.1", 0, backlog=512
        )
        port.value = server.sockets[0].getsockname()[1]
        ready.set()
        await server.serve_forever()

    asyncio.run(main())


def serve(images: list[bytes], latency: float):
    """The image server in its own process (an asyncio loop: latency costs no thread), so
    that what is measured is the client, not the server sharing its interpreter."""
    port, ready = multiprocessing.Value("i", 0), multiprocessing.Event()
    process = multiprocessing.Process(
        target=run_server, args=(images, latency, port, ready), daemon=True
    )
    process.start()
    ready.wait(30)
    return process, f"http://127.0.0.1:{port.value}"


def sequential(urls: list[str]) -> float:
    started = time.perf_counter()
    for url in urls:
        response = requests.get(url, timeout=30)
        response.raise_for_status()
    return len(urls) / (time.perf_counter() - started)


def prepare(root: Path, services: list[str], args) -> Path:
    """A project whose catalog lists one pending image per record, as harvest leaves it."""
    root.mkdir(parents=True)
    catalog_url = f"sqlite:///{root / 'catalog.sqlite'}"
    (root / "monalia.toml").write_text(
        f"""
[project]
catalog = "{catalog_url}"
data_dir = "{root / "data"}"
allow_private_addresses = true
[images]
concurrency = {args.concurrency}
per_host = {args.concurrency}
autothrottle = {"false" if args.no_autothrottle else "true"}
{f"processes = {args.processes}" if args.processes else ""}
""",
        encoding="utf-8",
    )
    catalog = Catalog.open(catalog_url)
    now = utcnow()
    with catalog.session() as session:
        for n, service in enumerate(services):
            record = RecordRow(
                source="bench",
                source_id=str(n),
                iri=f"urn:bench:{n}",
                content_hash="-",
                first_seen=now,
                last_seen=now,
                raw=None,
            )
            record.images = [
                ImageRow(
                    position=0,
                    url=f"{service}/full/max/0/default.jpg",
                    iiif_service=service,
                    is_main=True,
                    status="pending",
                )
            ]
            session.add(record)
    catalog.close()
    return root


def fetched_count(project: Path) -> int:
    catalog = Catalog.open(f"sqlite:///{project / 'catalog.sqlite'}")
    with catalog.session() as session:
        count = session.query(ImageRow).filter(ImageRow.status == "fetched").count()
    catalog.close()
    return count


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--no-autothrottle", action="store_true")
    parser.add_argument(
        "--processes", type=int, default=0, help="crawl processes (0: monalia's default)"
    )
    parser.add_argument(
        "--sample", type=int, default=200, help="images the sequential loop fetches"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(value) for value in args.sizes.split(",")]

    bases = base_images()
    images = [with_comment(bases[n % len(bases)], f"image {n}") for n in range(max(sizes))]
    mean_kb = sum(map(len, images)) / len(images) / 1000
    server, url = serve(images, args.latency)
    services = [f"{url}/iiif/{n}" for n in range(max(sizes))]
    sample = [f"{s}/full/!512,512/0/default.jpg" for s in services[: args.sample]]
    try:
        with tempfile.TemporaryDirectory() as folder:
            runs = iter(range(10**6))

            def images_at(count: int):
                def run() -> float:
                    project = prepare(Path(folder) / f"run-{next(runs)}", services[:count], args)
                    seconds, _ = timed_process([MONALIA, "-q", "-p", str(project), "images"])
                    fetched = fetched_count(project)
                    if fetched != count:
                        raise RuntimeError(f"{fetched} of {count} fetched")
                    shutil.rmtree(project)
                    return count / seconds

                return run

            samples = alternate(
                {"sequential": lambda: sequential(sample), **{n: images_at(n) for n in sizes}},
                args.repeat,
                "images/s",
            )
    except RuntimeError as exc:
        print(f"bench images: could not measure: {exc}", file=sys.stderr)
        return 1
    finally:
        server.terminate()
    sequential_rate = samples.pop("sequential")
    rates = samples
    bound = args.concurrency / args.latency
    sequential_median = sequential_rate.median
    print(
        f"images of {mean_kb:.0f} KB, latency {args.latency * 1000:.0f} ms, concurrency "
        f"{args.concurrency} (one host); bound (concurrency / latency): {bound:.0f} images/s"
    )
    print(f"sequential requests.get loop ({args.sample} images): {sequential_rate.spread(1)}")
    criteria = []
    for count in sizes:
        rate = rates[count].median
        print(
            f"monalia images, {count:,} images, whole command: {rates[count].spread(0)} "
            f"({rate / sequential_median:.1f}x sequential, {rate / bound:.2f}x the bound)"
        )
        criteria.append(
            Criterion(
                f"{count:,} images / sequential loop", rate / sequential_median, SEQUENTIAL_TARGET
            )
        )
    largest = max(sizes)
    criteria.append(
        Criterion(
            f"{largest:,} images / latency bound", rates[largest].median / bound, BOUND_TARGET
        )
    )
    print(
        verdict(
            "images",
            criteria,
            ", ".join(f"{count:,} images {rates[count].median:.0f}/s" for count in sizes)
            + f", sequential {sequential_median:.1f}/s, bound {bound:.0f}/s; medians of "
            f"{args.repeat}, {args.latency * 1000:.0f} ms latency, concurrency {args.concurrency}",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
