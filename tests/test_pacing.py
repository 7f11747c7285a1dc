"""Per-host pacing (monalia.harvesters.throttle): it follows the network's latency, not the
crawl's own stalls, and backs off a host that slows down or says it is overloaded."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from scrapy.extensions.throttle import AutoThrottle
from scrapy.utils.test import get_crawler
from support.iiif_server import IiifServer, jpeg, picture
from support.servers import Reply
from test_images import image_rows, project_file

from monalia.harvesters.throttle import BACKOFF_FLOOR, WINDOW, NetworkPacing

TARGET = 16


def pacing(cls=NetworkPacing):
    crawler = get_crawler(
        settings_dict={
            "AUTOTHROTTLE_ENABLED": True,
            "AUTOTHROTTLE_TARGET_CONCURRENCY": TARGET,
            "AUTOTHROTTLE_MAX_DELAY": 60.0,
        }
    )
    throttle = cls(crawler)
    throttle.mindelay, throttle.maxdelay = 0.0, 60.0
    return throttle


def answer(throttle, slot, latency: float, status: int = 200) -> None:
    throttle._adjust_delay(slot, latency, SimpleNamespace(status=status))


def test_the_crawls_own_stalls_do_not_slow_it_down():
    """Half the answers wait on a busy event loop (0.3 s instead of the network's 0.05 s): the
    pace stays that of the network, where Scrapy's AutoThrottle slows to the stalls'."""
    ours, scrapys = SimpleNamespace(delay=0.01), SimpleNamespace(delay=0.01)
    mine, theirs = pacing(), pacing(AutoThrottle)
    for n in range(200):
        latency = 0.3 if n % 2 else 0.05
        answer(mine, ours, latency)
        answer(theirs, scrapys, latency)
    assert ours.delay == pytest.approx(0.05 / TARGET, rel=0.05)
    assert scrapys.delay > 4 * ours.delay


def test_a_host_that_slows_down_is_paced_to_its_new_latency():
    throttle, slot = pacing(), SimpleNamespace(delay=0.01)
    for _ in range(50):
        answer(throttle, slot, 0.05)
    fast = slot.delay
    for _ in range(WINDOW):
        answer(throttle, slot, 0.8)
    assert fast == pytest.approx(0.05 / TARGET, rel=0.05)
    assert slot.delay == pytest.approx(0.8 / TARGET, rel=0.05)


@pytest.mark.parametrize("status", [429, 503])
def test_an_overloaded_host_gets_a_longer_delay_that_eases_as_it_answers(status):
    throttle, slot = pacing(), SimpleNamespace(delay=0.003)
    answer(throttle, slot, 0.01, status)
    assert slot.delay == BACKOFF_FLOOR
    answer(throttle, slot, 0.01, status)
    assert slot.delay == 2 * BACKOFF_FLOOR
    for _ in range(30):
        answer(throttle, slot, 0.05)
    assert slot.delay == pytest.approx(0.05 / TARGET, rel=0.05)
    for _ in range(12):
        answer(throttle, slot, 0.01, status)
    assert slot.delay == 60.0  # never past AUTOTHROTTLE_MAX_DELAY


class BusyServer(IiifServer):
    """Images under /busy/ that take 30 ms each; with more than `capacity` requests in flight
    the server is overloaded and answers 503 at once."""

    def __init__(self, capacity: int = 3):
        self.capacity = capacity
        self.in_flight = 0
        self.overloaded = 0
        self.lock = threading.Lock()
        super().__init__(extra=self.busy)

    def busy(self, path: str) -> Reply | None:
        if not path.startswith("/busy/"):
            return None
        with self.lock:
            if self.in_flight >= self.capacity:
                self.overloaded += 1
                return Reply(status=503, body="overloaded")
            self.in_flight += 1
        try:
            time.sleep(0.03)
            body = jpeg(picture(path.split("/")[2], 160, 120))
        finally:
            with self.lock:
                self.in_flight -= 1
        return Reply(body=body, headers={"Content-Type": "image/jpeg"})


@pytest.mark.parametrize("autothrottle", [True, False])
def test_a_host_that_is_overloaded_is_backed_off(tmp_path, sqlite_url, cli, autothrottle):
    """16 requests in flight to a host that can take 3: with the pacing on (the default),
    every image comes and the host says it is overloaded a few times; with it off, it says so
    many more times for the same images."""
    with BusyServer() as server:
        records = [{"id": f"r{n}", "images": [f"{server.url}/busy/{n}.jpg"]} for n in range(60)]
        settings = "per_host = 16\nconcurrency = 16\n"
        settings += "processes = 1\n" + ("" if autothrottle else "autothrottle = false\n")
        project = project_file(tmp_path, sqlite_url, records, settings)
        text = (project / "monalia.toml").read_text(encoding="utf-8")
        (project / "monalia.toml").write_text(text.replace("retries = 2", "retries = 6"))
        assert cli("harvest", project=project).exit_code == 0
        done = cli("images", project=project)
        assert done.exit_code == 0, done.output
        rows = image_rows(sqlite_url)
        fetched = sum(row.status == "fetched" for row in rows.values())
    if autothrottle:
        assert fetched == 60, [row.error for row in rows.values() if row.status != "fetched"]
        assert server.overloaded < 60, server.overloaded
    else:
        assert server.overloaded >= 60, server.overloaded
