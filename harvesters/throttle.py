"""Per-host pacing that follows the network's latency, not the crawl's own CPU time.

Scrapy's AutoThrottle sets each host's delay from the latency of its answers: a host that
takes `latency` seconds per answer gets a request every `latency / target` seconds, so that
about `target` requests are in flight. The latency it reads is measured on the crawl's event
loop; while the loop is busy (decoding, hashing and writing what came back), answers wait, and
the crawl's own work reads as a slower host: the delay grows and the crawl slows itself down.

`NetworkPacing` takes as a host's latency the lowest of its last `WINDOW` answers: a stall of
the loop only ever adds to a latency, so the lowest is the network's, while a host that slows
down raises every one of them and the delay follows within a window. Answers of 429 (Too Many
Requests) and 503 (Service Unavailable) double the host's delay (at least `BACKOFF_FLOOR`
seconds, at most AUTOTHROTTLE_MAX_DELAY); later answers bring it back as they come.
"""

from __future__ import annotations

from collections import deque

from scrapy.extensions.throttle import AutoThrottle

WINDOW = 20  # answers per host the latency is the lowest of
BACKOFF_FLOOR = 0.25  # seconds between requests, at least, after a 429 or 503
BACK_OFF_STATUSES = (429, 503)


class NetworkPacing(AutoThrottle):
    """AutoThrottle reading the network's latency (see the module's docstring); enabled and
    tuned by the same AUTOTHROTTLE_* settings."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self.latencies: dict[int, deque[float]] = {}

    def network_latency(self, slot, latency: float) -> float:
        """The host's latency with this answer's: the lowest of its last answers."""
        window = self.latencies.setdefault(id(slot), deque(maxlen=WINDOW))
        window.append(latency)
        return min(window)

    def _adjust_delay(self, slot, latency: float, response) -> None:
        if response.status in BACK_OFF_STATUSES:
            slot.delay = min(max(2 * slot.delay, BACKOFF_FLOOR), self.maxdelay)
            return
        super()._adjust_delay(slot, self.network_latency(slot, latency), response)
