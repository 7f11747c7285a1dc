"""The HTTP layer every source uses, against a real local server that fails in real ways."""

from __future__ import annotations

import logging

import pytest
from support.servers import ApiServer, Reply

from monalia.net.http import HttpClient, HttpError, HttpSettings, mask_url

FAST = HttpSettings(timeout=1.0, retries=3, backoff=0.05, max_backoff=0.2)


def ok(path, params):
    return Reply(body={"ok": True, "path": path, "page": params.get("page")})


def test_429_with_retry_after_is_waited_out_not_hammered():
    with ApiServer(ok) as server, HttpClient(FAST) as client:
        server.fail_next(Reply(429, b"slow down", {"Retry-After": "1"}))
        assert client.get_json(server.url + "/items", {"page": 1})["ok"] is True
    first, second = server.seen
    assert second.at - first.at >= 0.95, "the retry came before Retry-After allowed"
    assert len(server.seen) == 2


def test_server_errors_timeouts_cut_and_malformed_bodies_are_retried():
    settings = FAST.model_copy(update={"retries": 4})
    with ApiServer(ok) as server, HttpClient(settings) as client:
        server.fail_next(
            Reply(500, b"oops"),
            Reply(200, {"ok": True}, delay=1.5),  # longer than the client's timeout
            Reply(200, {"ok": True, "big": "x" * 1000}, cut=True),
            Reply(200, b'{"ok": tru'),  # malformed JSON
        )
        answer = client.get_json(server.url + "/items", {"page": 2})
    assert answer == {"ok": True, "path": "/items", "page": "2"}
    assert len(server.seen) == 5
    assert client.policy.retried == 4


def test_the_last_error_names_the_url_and_status_and_masks_the_key(caplog):
    with (
        ApiServer(lambda p, q: Reply(503, b"down")) as server,
        HttpClient(FAST, secrets=["s3cret-key"]) as client,
        caplog.at_level(logging.WARNING),
        pytest.raises(HttpError) as failed,
    ):
        client.get_json(server.url + "/search", {"wskey": "s3cret-key", "query": "cat"})
    message = str(failed.value)
    assert "HTTP 503" in message and "failed after 4 tries" in message
    assert server.url + "/search" in message and "query=cat" in message
    assert "s3cret-key" not in message and "wskey=***" in message
    assert "s3cret-key" not in caplog.text and caplog.text.count("try ") == 3
    assert len(server.seen) == 4


def test_a_refused_key_is_not_retried():
    with ApiServer(lambda p, q: Reply(401, b"bad key")) as server, HttpClient(FAST) as client:
        with pytest.raises(HttpError) as failed:
            client.get_json(server.url + "/search", {"wskey": "nope"})
    assert failed.value.status == 401 and "check the API key" in str(failed.value)
    assert len(server.seen) == 1


def test_a_retry_after_longer_than_allowed_fails_at_once():
    settings = HttpSettings(retries=3, backoff=0.01, max_retry_after=5)
    with (
        ApiServer(lambda p, q: Reply(429, b"", {"Retry-After": "3600"})) as server,
        HttpClient(settings) as client,
        pytest.raises(HttpError, match="wait 3600 s"),
    ):
        client.get(server.url + "/x")
    assert len(server.seen) == 1


def test_per_host_rate_limit_spaces_requests_and_user_agent_names_monalia():
    settings = HttpSettings(rate_limit=10)  # one request per 0.1 s
    with ApiServer(ok) as server, HttpClient(settings) as client:
        for page in range(6):
            client.get_json(server.url + "/items", {"page": page})
    gaps = [b.at - a.at for a, b in zip(server.seen, server.seen[1:], strict=False)]
    assert min(gaps) >= 0.08, gaps
    assert server.seen[0].headers["User-Agent"].startswith("monalia/")


def test_connection_refused_is_retried_then_reported():
    with ApiServer(ok) as server:
        url = server.url
    with HttpClient(HttpSettings(retries=1, backoff=0.01)) as client:
        with pytest.raises(HttpError, match="connection failed"):
            client.get(url + "/gone")


def test_mask_url_hides_user_info_and_secret_parameters():
    masked = mask_url("https://bob:pw@example.org/q?api_key=abc&query=x%20y", ["abc"])
    assert masked == "https://example.org/q?api_key=***&query=x+y"


def test_the_environments_proxies_are_used_host_by_host(monkeypatch):
    """Proxies come from the environment as requests reads them (found once per host): a host
    that ``NO_PROXY`` names is asked directly, another through the proxy."""
    with ApiServer(ok) as proxy, ApiServer(ok) as direct, HttpClient(FAST) as client:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        port = direct.url.rsplit(":", 1)[1]
        for page in (1, 2):
            assert client.get_json(f"{direct.url}/items", {"page": page})["page"] == str(page)
            through = client.get_json(f"http://localhost:{port}/items", {"page": page})
            assert through["page"] == str(page)
    assert len(direct.seen) == 2  # the two direct requests; the others went to the proxy
    assert len(proxy.seen) == 2 and all(
        s.headers["Host"] == f"localhost:{port}" for s in proxy.seen
    )


def test_a_forked_process_reads_its_answers_on_connections_of_its_own():
    """A harvest's parsing processes share the client they were forked with: each opens its
    own connections, never reading answers from a socket another process also reads."""
    import multiprocessing

    with ApiServer(ok) as server, HttpClient(FAST) as client:
        assert client.get_json(server.url + "/first")["path"] == "/first"  # a kept connection
        inherited = client.session.get_adapter(server.url).poolmanager
        receiving, sending = multiprocessing.Pipe(duplex=False)

        def child() -> None:
            answer = client.get_json(server.url + "/child")
            own = client.session.get_adapter(server.url).poolmanager is not inherited
            sending.send((answer["path"], own))

        process = multiprocessing.get_context("fork").Process(target=child)
        process.start()
        process.join(10)
        assert receiving.recv() == ("/child", True)
        assert client.get_json(server.url + "/after")["path"] == "/after"
        assert client.session.get_adapter(server.url).poolmanager is inherited
