"""The curators' workbench (`monalia serve`): pages, decisions, access, and what follows from them.

A drawn collection is trained and enriched once; each test works on its own copy. The report's
thresholds are set so that every annotated record is a noise finding and every other one a
silence finding: the lists are known without depending on how well two epochs learnt.
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from monalia.catalog.database import Catalog
from monalia.catalog.models import DatasetRow, ReviewDecisionRow

pytest.importorskip("torch", reason="the train extra is not installed")
pytest.importorskip("starlette", reason="the workbench's web framework is not installed")

from starlette.testclient import TestClient
from support.workbench_project import build_trained, copy_project

THRESHOLDS = '\n[report]\nmethod = "threshold"\nnoise_below = 0.999\nsilence_above = 0.001\n'


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory) -> Path:
    folder = build_trained(tmp_path_factory.mktemp("workbench-template"))
    project_file = folder / "monalia.toml"
    text = project_file.read_text(encoding="utf-8").replace(
        '\n[report]\nmethod = "threshold"\n', ""
    )
    project_file.write_text(text + THRESHOLDS, encoding="utf-8")
    return folder


@pytest.fixture
def folder(trained_template, tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("MONALIA_CATALOG", raising=False)
    monkeypatch.delenv("MONALIA_SERVE_TOKEN", raising=False)
    return copy_project(trained_template, tmp_path / "project")


def open_workbench(folder: Path, **settings):
    from monalia.api.registry import default_registry
    from monalia.project import load_project
    from monalia.web.app import Settings, create_app
    from monalia.web.passwords import read_users  # noqa: F401  (the users file is read per login)
    from monalia.web.workbench import Workbench

    project = load_project(folder / "monalia.toml", default_registry())
    catalog = Catalog.open(project.catalog_url)
    workbench = Workbench(catalog, project)
    options = {
        "reviewer": "marie",
        "login_required": False,
        "read_only": False,
        "users_file": folder / "workbench-users.txt",
        # TestClient's requests name "testserver" as their Host, as a proxy's public name would
        "allowed_hosts": ("testserver",),
        **settings,
    }
    return workbench, catalog, create_app(workbench, Settings(**options))


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def cards(page: str) -> list[tuple[str, str]]:
    """(record, class) of each finding card on a page, in order."""
    return re.findall(r'class="card[^"]*"[^>]*data-record="([^"]+)" data-class="([^"]+)"', page)


def decisions(catalog) -> list[ReviewDecisionRow]:
    with catalog.session() as session:
        return list(session.scalars(select(ReviewDecisionRow).order_by(ReviewDecisionRow.id)))


def decide(client, token, record, cls, kind, decision, comment=""):
    return client.post(
        "/decide",
        data={
            "record": record,
            "class": cls,
            "kind": kind,
            "decision": decision,
            "comment": comment,
        },
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )


def test_pages_show_classes_findings_records_images_and_heat_maps(folder):
    workbench, _catalog, app = open_workbench(folder)
    client = TestClient(app)
    home = client.get("/")
    assert home.status_code == 200
    labels = re.findall(r"<tr>\s*<td>([^<]+)</td>", home.text)
    assert labels == ["cheval", "arbre", "chien"]
    assert home.headers["content-security-policy"].startswith("default-src 'self'")

    noise = client.get("/findings", params={"class": 0, "kind": "noise"})
    assert noise.status_code == 200
    found = cards(noise.text)
    expected = [item.finding.record for item in workbench.items(workbench.classes[0].uri, "noise")]
    assert found and [record for record, _ in found] == expected[:50]
    assert "Accept (a)" in noise.text and "<kbd>a</kbd>" in noise.text
    thumbs = re.findall(r'src="(/image/\d+/thumb)"', noise.text)
    assert len(thumbs) == len(found)
    picture = client.get(thumbs[0])
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
    # scores ordered lowest first for noise, highest first for silence
    scores = [
        float(s)
        for s in re.findall(r'<div class="score"[^>]*>[a-z -]*score ([0-9.]+)</div>', noise.text)
    ]
    assert scores == sorted(scores)
    silence = client.get("/findings", params={"class": 1, "kind": "silence"})
    scores = [
        float(s)
        for s in re.findall(r'<div class="score"[^>]*>[a-z -]*score ([0-9.]+)</div>', silence.text)
    ]
    assert scores and scores == sorted(scores, reverse=True)

    # each score says whose it is (threshold method here: the model's own)
    assert "model score" in silence.text and "out-of-sample score" not in silence.text
    record_iri = found[0][0]
    record = client.get("/record", params={"iri": record_iri, "class": 0, "kind": "noise"})
    assert "Model score" in record.text
    assert record.status_code == 200
    assert "Scores" in record.text and "cheval" in record.text and "arbre" in record.text
    image_id = re.search(r'data-image="(\d+)"', record.text).group(1)
    heat = client.get(f"/explain/{image_id}/0/heat")
    view = client.get(f"/explain/{image_id}/0/view")
    assert heat.status_code == 200 and heat.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert view.status_code == 200 and view.content[:2] == b"\xff\xd8"
    cached = list((folder / ".monalia" / "heatmaps").rglob("*.png"))
    assert len(cached) == 1  # computed once, kept

    # filters: a score range, a source, and search by a narrower term's label
    narrow = client.get("/findings", params={"class": 0, "kind": "noise", "min": "0", "max": "0"})
    assert cards(narrow.text) == []
    other = client.get("/findings", params={"class": 0, "kind": "noise", "source": "elsewhere"})
    assert cards(other.text) == []
    assert client.get("/suggest", params={"q": "chev"}).json()[0]["class"] == "cheval"
    search = client.get("/search", params={"q": "cheval"}, follow_redirects=False)
    assert search.status_code == 303 and "kind=search" in search.headers["location"]


def test_a_decision_is_kept_with_its_context_hides_the_finding_and_can_be_undone(folder):
    workbench, catalog, app = open_workbench(folder)
    client = TestClient(app)
    page = client.get("/findings", params={"class": 0, "kind": "noise"})
    token = csrf_of(page.text)
    (record, cls), second = cards(page.text)[:2]
    answer = decide(client, token, record, cls, "noise", "accept", "no horse here")
    assert answer.status_code == 200 and answer.json()["decision"] == "accept"
    [row] = decisions(catalog)
    item = next(i for i in workbench.items(cls, "noise") if i.finding.record == record)
    assert (row.record_iri, row.class_uri, row.kind, row.decision) == (
        record,
        cls,
        "noise",
        "accept",
    )
    assert row.reviewer == "marie" and row.comment == "no horse here"
    assert row.model_name == workbench.model.name and row.score == pytest.approx(item.finding.score)
    assert row.record_id is not None and row.decided_at is not None

    # the open list no longer offers it; the decided list shows it with its decision
    again = client.get("/findings", params={"class": 0, "kind": "noise"})
    assert cards(again.text)[0] == second
    decided = client.get("/findings", params={"class": 0, "kind": "noise", "reviewed": "decided"})
    assert cards(decided.text) == [(record, cls)] and "marie: accept" in decided.text
    assert "(1 reviewed)" in client.get("/").text

    # undo brings back the finding; the history keeps both rows
    assert decide(client, token, record, cls, "noise", "undo").json()["decision"] is None
    assert cards(client.get("/findings", params={"class": 0, "kind": "noise"}).text)[0] == (
        record,
        cls,
    )
    assert [r.decision for r in decisions(catalog)] == ["accept", "undo"]


def test_two_reviewers_are_both_kept_and_their_disagreement_shown(folder):
    _workbench, catalog, app_marie = open_workbench(folder)
    _other, _, app_paul = open_workbench(folder, reviewer="paul")
    marie, paul = TestClient(app_marie), TestClient(app_paul)
    page = marie.get("/findings", params={"class": 1, "kind": "silence"})
    record, cls = cards(page.text)[0]
    decide(marie, csrf_of(page.text), record, cls, "silence", "accept")
    paul_token = csrf_of(paul.get("/").text)
    answer = decide(paul, paul_token, record, cls, "silence", "reject").json()
    assert answer["disputed"] and answer["reviewers"] == {"marie": "accept", "paul": "reject"}
    assert {(r.reviewer, r.decision) for r in decisions(catalog)} == {
        ("marie", "accept"),
        ("paul", "reject"),
    }
    disputed = marie.get(
        "/findings", params={"class": 1, "kind": "silence", "reviewed": "disputed"}
    )
    assert cards(disputed.text) == [(record, cls)] and "reviewers disagree" in disputed.text
    assert "reviewers disagree" in marie.get("/record", params={"iri": record}).text


def test_a_write_without_the_csrf_token_or_in_read_only_mode_is_refused(folder):
    _workbench, catalog, app = open_workbench(folder)
    client = TestClient(app)
    page = client.get("/findings", params={"class": 0, "kind": "noise"})
    record, cls = cards(page.text)[0]
    assert decide(client, "", record, cls, "noise", "accept").status_code == 403
    assert decide(client, "forged-token", record, cls, "noise", "accept").status_code == 403
    # another browser's token does not fit this session
    stranger = TestClient(app)
    other_token = csrf_of(stranger.get("/").text)
    assert decide(client, other_token, record, cls, "noise", "accept").status_code == 403
    assert decisions(catalog) == []

    _workbench, catalog, read_only = open_workbench(folder, read_only=True)
    viewer = TestClient(read_only)
    page = viewer.get("/findings", params={"class": 0, "kind": "noise"})
    assert "Accept (a)" not in page.text
    assert decide(viewer, csrf_of(page.text), record, cls, "noise", "accept").status_code == 403
    assert decisions(catalog) == []


def test_off_loopback_every_page_needs_a_login(folder, monkeypatch):
    from monalia.web.passwords import add_user

    add_user(folder / "workbench-users.txt", "marie", "correct horse")
    _workbench, catalog, app = open_workbench(folder, login_required=True)
    client = TestClient(app)
    for path in ("/", "/findings?class=0&kind=noise", "/record?iri=x", "/image/1/thumb"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", path
    login = client.get("/login")
    token = csrf_of(login.text)
    assert decide(client, token, "r", "c", "noise", "accept").status_code == 401
    wrong = client.post("/login", data={"user": "marie", "password": "wrong", "csrf": token})
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    no_token = client.post("/login", data={"user": "marie", "password": "correct horse"})
    assert no_token.status_code == 403
    right = client.post(
        "/login", data={"user": "marie", "password": "correct horse", "csrf": token}
    )
    assert right.status_code == 200 and "cheval" in right.text  # followed to the classes
    page = client.get("/findings", params={"class": 0, "kind": "noise"})
    record, cls = cards(page.text)[0]
    assert decide(client, csrf_of(page.text), record, cls, "noise", "reject").status_code == 200
    assert [r.reviewer for r in decisions(catalog)] == ["marie"]
    # the users file holds a hash, not the password
    assert "correct horse" not in (folder / "workbench-users.txt").read_text()

    # a token from the environment, for scripts
    monkeypatch.setenv("MONALIA_SERVE_TOKEN", "s3cret-token-value-long-enough-for-a-token")
    script = TestClient(app)
    assert (
        script.get(
            "/", headers={"Authorization": "Bearer wrong"}, follow_redirects=False
        ).status_code
        == 303
    )
    assert (
        script.get(
            "/", headers={"Authorization": "Bearer s3cret-token-value-long-enough-for-a-token"}
        ).status_code
        == 200
    )


def test_errors_reach_the_browser_as_a_short_page_never_a_trace(folder, monkeypatch):
    workbench, _catalog, app = open_workbench(folder)
    client = TestClient(app, raise_server_exceptions=False)
    missing = client.get("/findings", params={"class": 99})
    assert missing.status_code == 404 and "no such class" in missing.text
    assert client.get("/findings", params={"class": 0, "min": "x"}).status_code == 400
    assert client.get("/record", params={"iri": "urn:nothing"}).status_code == 404

    def broken():
        raise RuntimeError("secret detail /etc/passwd")

    monkeypatch.setattr(workbench, "summary", broken)
    answer = client.get("/")
    assert answer.status_code == 500
    assert "Traceback" not in answer.text and "secret detail" not in answer.text


def test_serve_refuses_another_address_without_users_and_users_add_hashes(folder):
    result = subprocess.run(
        [sys.executable, "-m", "monalia", "--project", str(folder), "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs a login" in lines[0] and "users add" in lines[0]
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "monalia",
            "--project",
            str(folder),
            "users",
            "add",
            "ana",
            "--password-stdin",
        ],
        input="a long password\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    stored = (folder / "workbench-users.txt").read_text()
    assert stored.startswith("ana:scrypt$") and "a long password" not in stored


def test_review_export_gives_the_changes_and_a_prov_graph_that_passes_the_shapes(folder, cli):
    pyshacl = pytest.importorskip("pyshacl")
    import rdflib

    workbench, _catalog, app = open_workbench(folder)
    client = TestClient(app)
    token = csrf_of(client.get("/").text)
    horse = workbench.classes[0]
    noise = workbench.items(horse.uri, "noise")
    silence = workbench.items(horse.uri, "silence")
    decide(client, token, noise[0].finding.record, horse.uri, "noise", "accept", "a tree")
    decide(client, token, silence[0].finding.record, horse.uri, "silence", "accept")
    decide(client, token, silence[1].finding.record, horse.uri, "silence", "reject")
    decide(client, token, noise[1].finding.record, horse.uri, "noise", "skip")

    as_csv = cli("review", "export", "--format", "csv", project=folder)
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    changes = {(row["record"], row["action"], row["term_uri"]) for row in rows}
    assert changes == {
        (noise[0].finding.record, "remove", horse.uri),
        (silence[0].finding.record, "add", horse.uri),
    }
    removal = next(row for row in rows if row["action"] == "remove")
    assert removal["field"] and removal["reviewer"] == "marie" and removal["comment"] == "a tree"
    assert next(row for row in rows if row["action"] == "add")["term_label"] == "cheval"

    as_json = json.loads(cli("review", "export", "--format", "json", project=folder).stdout)
    assert as_json["confirmed"] == 1 and len(as_json["decisions"]) == 3

    turtle = cli("review", "export", "--format", "rdf", project=folder).stdout
    graph = rdflib.Graph().parse(data=turtle, format="turtle")
    prov = rdflib.Namespace("http://www.w3.org/ns/prov#")
    ml = rdflib.Namespace("http://ns.inria.fr/monalia/")
    assert len(set(graph.subjects(rdflib.RDF.type, prov.Activity))) == 3
    assert len(set(graph.subjects(rdflib.RDF.type, prov.Agent))) == 1
    assert len(set(graph.subjects(rdflib.RDF.type, ml.SubjectChange))) == 2
    used = set(graph.objects(None, prov.used))
    assert len(used) == 3  # each decision points at the model's detection it judged
    enrichment = rdflib.Graph()
    for path in (folder / "out").glob("*.ttl"):
        enrichment.parse(path, format="turtle")
    assert used <= set(enrichment.subjects())  # ... which the enrichment graph holds
    shapes = rdflib.Graph().parse(
        Path(__file__).resolve().parent.parent / "ontology" / "shapes.ttl", format="turtle"
    )
    conforms, _, text = pyshacl.validate(graph, shacl_graph=shapes)
    assert conforms, text
    # a broken graph does not pass: the shapes do check it
    graph.remove((None, prov.wasAssociatedWith, None))
    assert not pyshacl.validate(graph, shacl_graph=shapes)[0]

    published = cli("review", "publish", "--sink", "files", project=folder)
    assert published.exit_code == 0 and "graph/curation" in published.output
    written = list((folder / "out").glob("*curation*.ttl"))
    assert len(written) == 1
    assert len(rdflib.Graph().parse(written[0], format="turtle")) == len(
        rdflib.Graph().parse(data=turtle, format="turtle")
    )


def test_label_takes_the_decisions_into_the_next_dataset(folder, cli):
    workbench, catalog, app = open_workbench(folder)
    client = TestClient(app)
    token = csrf_of(client.get("/").text)
    horse = workbench.classes[0]
    removed = workbench.items(horse.uri, "noise")[0].finding.record
    added = workbench.items(horse.uri, "silence")[0].finding.record
    kept = workbench.items(horse.uri, "silence")[1].finding.record
    decide(client, token, removed, horse.uri, "noise", "accept")
    decide(client, token, added, horse.uri, "silence", "accept")
    decide(client, token, kept, horse.uri, "silence", "reject")

    result = cli("label", project=folder)
    assert result.exit_code == 0, result.output
    assert "review decisions: 3 used (1 labels added, 1 removed, 1 confirmed)" in result.output
    with catalog.session() as session:
        newest = session.scalars(select(DatasetRow).order_by(DatasetRow.id.desc())).first()
        assert newest.stats["review_decisions"]["used"] == 3
        members = {
            iri: labels
            for iri, labels in session.execute(
                __import__("sqlalchemy").text(
                    "SELECT r.iri, m.labels FROM dataset_members m JOIN records r "
                    "ON r.id = m.record_id WHERE m.dataset_id = :d"
                ),
                {"d": newest.id},
            )
        }
    labels = {
        iri: json.loads(value) if isinstance(value, str) else value
        for iri, value in members.items()
    }
    assert horse.uri in labels[added]
    assert horse.uri not in labels.get(removed, [])
    assert horse.uri not in labels.get(kept, [])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """`monalia serve` in its own process, once it answers: the process and its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monalia",
            "--project",
            str(folder),
            "serve",
            "--port",
            str(port),
            "--reviewer",
            "marie",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, server.stdout.read()
            time.sleep(0.3)
    return server, f"http://127.0.0.1:{port}"


def test_the_workbench_in_a_real_browser(folder):
    from test_curation import browser

    driver = browser()
    server, base = start_server(folder)
    try:
        driver.get(f"{base}/findings?class=0&kind=noise")
        shown = driver.find_elements("css selector", ".card")
        assert len(shown) >= 2
        for _ in range(50):  # thumbnails load lazily: those in view
            loaded = driver.execute_script(
                "return Array.from(document.images)"
                ".filter(i => i.getBoundingClientRect().top < window.innerHeight)"
                ".map(i => i.complete && i.naturalWidth > 0)"
            )
            if loaded and all(loaded):
                break
            time.sleep(0.1)
        assert loaded and all(loaded)
        first, second = (card.get_attribute("data-record") for card in shown[:2])
        assert "selected" in shown[0].get_attribute("class")
        driver.find_element("css selector", "body").send_keys("a")
        for _ in range(50):  # the decision is written, then the next finding is selected
            selected = driver.find_elements("css selector", ".card.selected")
            if selected and selected[0].get_attribute("data-record") == second:
                break
            time.sleep(0.1)
        assert selected[0].get_attribute("data-record") == second
        assert "marie: accept" in shown[0].text
        catalog = Catalog.open(f"sqlite:///{folder / 'catalog.sqlite'}")
        [row] = decisions(catalog)
        assert (row.record_iri, row.decision, row.reviewer) == (first, "accept", "marie")

        # a reload: the decided finding is no longer offered; among the decided ones, it is
        driver.refresh()
        records = [
            c.get_attribute("data-record") for c in driver.find_elements("css selector", ".card")
        ]
        assert first not in records and records[0] == second
        driver.get(f"{base}/findings?class=0&kind=noise&reviewed=decided")
        [card] = driver.find_elements("css selector", ".card")
        assert card.get_attribute("data-record") == first and "marie: accept" in card.text

        # the record page: its heat map on demand, over the model's view
        driver.get(f"{base}/record?iri={first}&class=0&kind=noise")
        for _ in range(100):
            ready = driver.execute_script(
                "const h = document.querySelector('.explain .heat');"
                "return h && h.complete && h.naturalWidth > 0"
            )
            if ready:
                break
            time.sleep(0.1)
        assert ready
        slider = driver.find_element("css selector", ".explain .opacity")
        driver.execute_script(
            "arguments[0].value = 20; arguments[0].dispatchEvent(new Event('input', {bubbles: true}))",
            slider,
        )
        opacity = driver.execute_script(
            "return document.querySelector('.explain .heat').style.opacity"
        )
        assert float(opacity) == pytest.approx(0.2)
        shot = folder / "record.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)


def test_a_finding_is_shown_again_only_when_the_model_claims_the_opposite():
    from datetime import UTC, datetime

    from monalia.catalog.reviews import Decision, FindingReview

    def decision(id_, kind, what, reviewer="marie"):
        return Decision(
            id_,
            "r",
            "c",
            "cheval",
            kind,
            what,
            None,
            reviewer,
            "m1",
            0.9,
            None,
            None,
            None,
            datetime.now(UTC),
        )

    accepted_silence = FindingReview("r", "c", {"marie": decision(1, "silence", "accept")})
    assert accepted_silence.hides("silence") and accepted_silence.hides("search")
    assert not accepted_silence.hides("noise")  # the model now says the class is not there
    assert accepted_silence.verdict.present is True
    rejected_noise = FindingReview("r", "c", {"marie": decision(2, "noise", "reject")})
    assert rejected_noise.hides("noise") and not rejected_noise.hides("silence")
    assert rejected_noise.verdict.present is True
    skipped = FindingReview("r", "c", {"marie": decision(3, "noise", "skip")})
    assert skipped.verdict is None and skipped.hides("noise")
    both = FindingReview(
        "r",
        "c",
        {"marie": decision(4, "noise", "accept"), "paul": decision(5, "noise", "reject", "paul")},
    )
    assert both.disputed and both.verdict.reviewer == "paul"  # the latest one counts


@pytest.mark.slow
def test_the_next_round_learns_from_the_decisions_and_does_not_offer_them_again(folder, cli):
    workbench, catalog, app = open_workbench(folder)
    client = TestClient(app)
    token = csrf_of(client.get("/").text)
    horse = workbench.classes[0]
    decided = {
        "noise": [item.finding.record for item in workbench.items(horse.uri, "noise")[:3]],
        "silence": [item.finding.record for item in workbench.items(horse.uri, "silence")[:3]],
    }
    for kind, records in decided.items():
        for number, record in enumerate(records):
            decide(client, token, record, horse.uri, kind, "accept" if number else "reject")
    old_model = workbench.model.name

    assert "review decisions: 6 used" in cli("label", project=folder).output
    trained = cli("train", project=folder)
    assert trained.exit_code == 0, trained.output
    assert cli("enrich", project=folder).exit_code == 0

    again, _catalog, app = open_workbench(folder)
    assert again.model.name != old_model  # a new dataset, so a new model
    with catalog.session() as session:
        newest = session.scalars(select(DatasetRow).order_by(DatasetRow.id.desc())).first()
    assert again.model.dataset_id == newest.id
    assert newest.stats["review_decisions"]["used"] == 6
    client = TestClient(app)
    for kind, records in decided.items():
        shown = {
            record
            for record, _ in cards(
                client.get("/findings", params={"class": 0, "kind": kind, "reviewed": "open"}).text
            )
        }
        listed = {item.finding.record for item in again.items(horse.uri, kind)}
        assert set(records) <= listed  # the new model still makes these findings ...
        assert not shown & set(records)  # ... but they are not offered again
        assert shown  # the others are


def test_the_html_report_shows_heat_maps_of_its_findings(folder, cli):
    result = cli("report", "html", str(folder / "site"), project=folder)
    assert result.exit_code == 0, result.output
    heatmaps = sorted((folder / "site" / "heatmaps").glob("*.jpg"))
    assert 0 < len(heatmaps) <= 60  # [serve] heatmaps: the noise and silence findings first
    noise = (folder / "site" / "noise.html").read_text(encoding="utf-8")
    shown = re.findall(r'<img class="heatmap" src="(heatmaps/[^"]+)"', noise)
    assert shown and all((folder / "site" / path).is_file() for path in shown)


def test_search_results_are_read_as_far_as_the_pages_need(folder, monkeypatch):
    import monalia.web.workbench as module

    monkeypatch.setattr(module, "SEARCH_FIRST", 4)
    workbench, _catalog, _app = open_workbench(folder)
    horse = workbench.classes[0]
    everything = [f.record for f in workbench.curation.search(horse, None, 500)]
    # three pages of three, read four at a time (how many a tiny model finds varies with the
    # CPU's arithmetic: 9 on some machines, more on others)
    assert len(everything) >= 9
    first = workbench.page(horse.uri, "search", 1, per_page=3, reviewed="all")
    assert not first.complete and len(workbench.items(horse.uri, "search", 1)) == 4
    assert [i.finding.record for i in first.items] == everything[:3]
    third = workbench.page(horse.uri, "search", 3, per_page=3, reviewed="all")
    assert [i.finding.record for i in third.items] == everything[6:9]
    last = workbench.page(horse.uri, "search", 99, per_page=3, source="collection")
    assert last.complete and last.total == len(everything)  # a filter reads them all


def test_the_decision_history_on_each_catalog_database(catalog_url):
    from monalia.catalog.reviews import history, record_decision, reviews, undo_decision

    catalog = Catalog.open(catalog_url)
    record, cls = "urn:r1", "urn:class/horse"

    def decide_as(reviewer, decision, kind="silence"):
        return record_decision(
            catalog,
            record_iri=record,
            class_uri=cls,
            kind=kind,
            decision=decision,
            reviewer=reviewer,
            score=0.97,
        )

    decide_as("marie", "reject")
    decide_as("marie", "accept")
    decide_as("paul", "reject")
    review = reviews(catalog)[record, cls]
    assert review.disputed and review.verdict.reviewer == "paul"
    assert undo_decision(catalog, record, cls, "paul", "silence")
    assert not undo_decision(catalog, record, cls, "ana", "silence")  # nothing of hers to undo
    review = reviews(catalog, [(record, cls)])[record, cls]
    assert set(review.by_reviewer) == {"marie"} and not review.disputed
    assert review.verdict.decision == "accept" and review.verdict.present is True
    assert undo_decision(catalog, record, cls, "marie", "silence")  # back to her first one
    assert reviews(catalog)[record, cls].verdict.decision == "reject"
    assert [(d.reviewer, d.decision) for d in history(catalog, record)] == [
        ("marie", "reject"),
        ("marie", "accept"),
        ("paul", "reject"),
        ("paul", "undo"),
        ("marie", "undo"),
    ]
    with pytest.raises(Exception, match="unknown decision"):
        decide_as("marie", "maybe")


def test_more_like_this_and_the_duplicates_page(folder, cli):
    pytest.importorskip("faiss")
    workbench, catalog, app = open_workbench(folder)
    client = TestClient(app)
    record = workbench.items(workbench.classes[0].uri, "noise")[0].finding.record
    assert "No groups" in client.get("/duplicates").text
    # enrich kept the images' vectors: more like this needs nothing else
    assert list((folder / ".monalia" / "similarity").rglob("part-*.npz"))

    result = cli("duplicates", "--threshold", "0.8", "--no-publish", project=folder)
    assert result.exit_code == 0, result.output
    workbench, catalog, app = open_workbench(folder)
    client = TestClient(app)
    page = client.get("/record", params={"iri": record})
    similar = re.findall(r'<div class="similar">(.*?)</div>', page.text, re.S)
    assert similar and len(re.findall(r"<a href=", similar[0])) == 8
    assert record not in similar[0]  # not itself
    groups = client.get("/duplicates")
    found = cards(groups.text)
    assert found  # each other record of a group, against the group's first
    first, other = found[0]
    answer = decide(client, csrf_of(groups.text), first, other, "duplicate", "reject")
    assert answer.status_code == 200 and answer.json()["decision"] == "reject"
    [row] = decisions(catalog)
    assert (row.kind, row.record_iri, row.class_uri) == ("duplicate", first, other)
    # a duplicate decision changes no labels
    assert "review decisions" not in cli("label", project=folder).output


def test_enrich_killed_mid_run_then_run_again_keeps_one_vector_per_image(folder, cli, monkeypatch):
    import numpy as np

    from monalia.similarity.vectors import VectorStore

    pytest.importorskip("faiss")
    project_file = folder / "monalia.toml"
    text = project_file.read_text(encoding="utf-8")
    project_file.write_text(text.replace("[enrich]\n", "[enrich]\nchunk_size = 16\n"), "utf-8")
    shutil_rmtree = __import__("shutil").rmtree
    shutil_rmtree(folder / ".monalia" / "similarity")
    real_add = VectorStore.add
    calls = []

    def add_then_die(self, keys, vectors):
        written = real_add(self, keys, vectors)
        calls.append(written)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is stopped after two chunks are kept
        return written

    monkeypatch.setattr(VectorStore, "add", add_then_die)
    stopped = cli("enrich", "--rescore", project=folder)
    assert stopped.exit_code != 0 and len(calls) == 2
    monkeypatch.setattr(VectorStore, "add", real_add)
    assert cli("enrich", project=folder).exit_code == 0
    [stored] = list((folder / ".monalia" / "similarity").iterdir())
    keys, vectors = VectorStore(stored).load()
    catalog = Catalog.open(f"sqlite:///{folder / 'catalog.sqlite'}")
    with catalog.session() as session:
        fetched = set(
            session.scalars(
                select(__import__("monalia.catalog.models", fromlist=["ImageRow"]).ImageRow.sha256)
            )
        )
    assert len(keys) == len(set(keys)) == len(fetched - {None})
    assert vectors.shape[0] == len(keys) and np.isfinite(vectors.astype(np.float32)).all()


# -- hardening ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("loopback_only")  # a regression cannot reach out
def test_dns_rebinding_cannot_reach_the_loopback_workbench(folder):
    _workbench, catalog, app = open_workbench(folder, allowed_hosts=())
    # a page at attacker.example that had its name rebound to 127.0.0.1
    rebound = TestClient(app, base_url="http://attacker.example:8000")
    answer = rebound.get("/findings", params={"class": 0, "kind": "noise"})
    assert answer.status_code == 400 and "csrf-token" not in answer.text
    assert answer.headers["content-security-policy"]
    own = TestClient(app, base_url="http://127.0.0.1:8000")
    page = own.get("/findings", params={"class": 0, "kind": "noise"})
    assert page.status_code == 200
    assert TestClient(app, base_url="http://localhost:8000").get("/").status_code == 200
    record, cls = cards(page.text)[0]
    token = csrf_of(page.text)
    # a write from another site's page, even with the token, is refused by its Origin
    form = {"record": record, "class": cls, "kind": "noise", "decision": "accept", "csrf": token}
    foreign = own.post("/decide", data=form, headers={"Origin": "http://attacker.example:8000"})
    assert foreign.status_code == 403
    assert own.post("/decide", data=form, headers={"Origin": "null"}).status_code == 403
    assert decisions(catalog) == []
    same = own.post(
        "/decide",
        data=form,
        headers={"Origin": "http://127.0.0.1:8000", "Accept": "application/json"},
    )
    assert same.status_code == 200 and len(decisions(catalog)) == 1
    # a proxy's public name is answered once it is allowed
    _workbench, _catalog, proxied = open_workbench(folder, allowed_hosts=("review.museum.example",))
    assert TestClient(proxied, base_url="https://review.museum.example").get("/").status_code == 200


def login(client, name="marie", password="correct horse"):
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"user": name, "password": password, "csrf": token},
        follow_redirects=False,
    )


@pytest.mark.usefixtures("loopback_only")  # a regression cannot reach out
def test_sessions_end_at_logout_at_user_removal_and_at_a_fixed_time(folder):
    from monalia.web.passwords import add_user, remove_user

    users = folder / "workbench-users.txt"
    add_user(users, "marie", "correct horse")
    add_user(users, "paul", "battery staple")
    _workbench, _catalog, app = open_workbench(folder, login_required=True)
    client = TestClient(app)
    answer = login(client)
    assert answer.status_code == 303
    cookie = answer.cookies["monalia_workbench"]
    max_age = int(re.search(r"max-age=(\d+)", answer.headers["set-cookie"].lower()).group(1))
    assert 43190 <= max_age <= 43200  # twelve hours from the login
    # the cookie is not sent again with every answer: its lifetime does not slide
    assert "set-cookie" not in client.get("/").headers
    token = csrf_of(client.get("/").text)
    client.post("/logout", data={"csrf": token}, follow_redirects=False)
    replay = TestClient(app, cookies={"monalia_workbench": cookie})
    assert replay.get("/", follow_redirects=False).status_code == 303  # to the login page

    # a user removed from the users file loses the sessions they had
    paul = TestClient(app)
    assert login(paul, "paul", "battery staple").status_code == 303
    assert paul.get("/", follow_redirects=False).status_code == 200
    assert remove_user(users, "paul")  # what `monalia users remove paul` does
    assert paul.get("/", follow_redirects=False).status_code == 303

    # the lifetime is counted from the login, whatever happens in between
    site = app.state.site
    marie = TestClient(app)
    login(marie)
    clock = [__import__("time").time()]
    site.sessions.clock = lambda: clock[0]
    clock[0] += 11 * 3600
    assert marie.get("/", follow_redirects=False).status_code == 200
    clock[0] += 3600 + 1
    assert marie.get("/", follow_redirects=False).status_code == 303


@pytest.mark.usefixtures("loopback_only")  # a regression cannot reach out
def test_failed_logins_are_throttled_and_unknown_users_take_as_long(folder):
    from monalia.web.passwords import add_user

    add_user(folder / "workbench-users.txt", "marie", "correct horse")
    _workbench, _catalog, app = open_workbench(folder, login_required=True)
    client = TestClient(app)
    statuses = [login(client, "marie", f"wrong {n}").status_code for n in range(8)]
    assert statuses[:5] == [401] * 5 and 429 in statuses[5:]
    refused = login(client, "marie", "correct horse")  # even the right one waits its turn
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1

    def timed(name: str) -> float:
        started = time.perf_counter()
        other = TestClient(app)  # each from its own address would be throttled apart; these
        login(other, name, "wrong password")  # are few enough to stay under the limit
        return time.perf_counter() - started

    app.state.site.throttle.free = 100
    known = sorted(timed("marie") for _ in range(3))[1]
    unknown = sorted(timed("nobody") for _ in range(3))[1]
    assert unknown > known / 3, (known, unknown)  # an unknown name costs a hash check too


@pytest.mark.usefixtures("loopback_only")  # a regression cannot reach out
def test_a_decision_must_name_a_record_and_a_class_that_exist(folder, cli):
    _workbench, catalog, app = open_workbench(folder)
    client = TestClient(app)
    page = client.get("/findings", params={"class": 0, "kind": "noise"})
    token = csrf_of(page.text)
    record, cls = cards(page.text)[0]
    assert decide(client, token, "urn:a b", cls, "noise", "accept").status_code == 400
    assert decide(client, token, "urn:nowhere", cls, "noise", "accept").status_code == 400
    assert decide(client, token, record, "urn:no-class", "noise", "accept").status_code == 400
    assert decisions(catalog) == []
    assert decide(client, token, record, cls, "noise", "reject").status_code == 200
    result = cli("review", "publish", project=folder)
    assert result.exit_code == 0, result.output


@pytest.mark.usefixtures("loopback_only")  # a regression cannot reach out
def test_odd_ids_and_errors_answer_with_headers_and_no_trace(folder, monkeypatch):
    workbench, _catalog, app = open_workbench(folder)
    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/image/99999999999999999999999999/thumb", "/explain/99999999999999999999/0/heat"):
        answer = client.get(path)
        assert answer.status_code == 404, path
    assert client.get("/findings", params={"class": -1, "kind": "noise"}).status_code == 404

    def broken(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(workbench, "page", broken)
    failed = client.get("/findings", params={"class": 0, "kind": "noise"})
    assert failed.status_code == 500 and "broken on purpose" not in failed.text
    assert "frame-ancestors 'none'" in failed.headers["content-security-policy"]
    _workbench, _catalog, guarded = open_workbench(folder, login_required=True)
    to_login = TestClient(guarded).get("/", follow_redirects=False)
    assert to_login.status_code == 303 and to_login.headers["x-frame-options"] == "DENY"
    _workbench, _catalog, secure = open_workbench(folder, secure_cookie=True)
    assert "secure" in TestClient(secure).get("/").headers["set-cookie"].lower()


def test_serve_refuses_a_short_token(folder, monkeypatch):
    monkeypatch.setenv("MONALIA_SERVE_TOKEN", "short")
    result = subprocess.run(
        [sys.executable, "-m", "monalia", "--project", str(folder), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "at least 32" in result.stderr
    assert "short" not in result.stderr.replace("shorter", "")


def test_every_machine_format_prints_only_data_in_one_set_of_names(folder, cli):
    """What a script reads from stdout parses, follows the documented schema, and names each
    field as the other formats do; the summaries went to stderr."""
    pytest.importorskip("faiss")
    import jsonschema
    from click.testing import CliRunner

    from monalia.cli import cli as command

    schemas = Path(__file__).parents[1] / "docs" / "reference" / "schemas"

    def schema(name: str) -> dict:
        return json.loads((schemas / f"{name}.schema.json").read_text(encoding="utf-8"))

    noise = json.loads(cli("report", "noise", "--format", "json", project=folder).stdout)
    record, label = noise[0]["record"], noise[0]["class_label"]
    commands = {
        ("report", "noise"): "findings",
        ("report", "silence"): "findings",
        ("search", label): "findings",
        ("similar", record, "--k", "3"): "similar",
        ("duplicates", "--threshold", "0.8", "--no-publish"): "duplicates",
        ("review", "export"): "review-export",
        ("review", "stats"): "review-stats",
        ("audit", "--no-dataset"): "audit",
        ("teach", "rank", "probe", "--limit", "5"): "teach",
    }
    reference = noise[0]["reference"]
    assert cli("teach", "new", "Probe", "--example", reference, project=folder).exit_code == 0
    for args, name in commands.items():
        for quiet in (True, False):
            runner = CliRunner()
            flags = ["--project", str(folder)] + (["-q"] if quiet else [])
            answer = runner.invoke(command, [*flags, *args, "--format", "json"])
            assert answer.exit_code == 0, (args, answer.output)
            data = json.loads(answer.stdout)  # nothing but the data
            jsonschema.validate(data, schema(name))
        table = CliRunner().invoke(command, ["--project", str(folder), *args, "--format", "csv"])
        assert table.exit_code == 0, (args, table.output)
        rows = list(csv.DictReader(io.StringIO(table.stdout)))
        if name == "review-export":
            fields = list(schema(name)["properties"]["changes"]["items"]["required"])
        elif name == "review-stats":
            fields = list(schema(name)["properties"]["precision"]["items"]["required"])
        elif name == "duplicates":
            fields = ["group", "lowest", *schema("similar")["items"]["required"][1:]]
            assert len(rows) == sum(len(group["records"]) for group in data)
        else:
            fields = list(data[0]) if data else None
            assert len(rows) == len(data), args
        header = next(csv.reader(io.StringIO(table.stdout)))
        assert fields is None or header == fields, (args, header)
    stats = CliRunner().invoke(command, ["--project", str(folder), "dataset", "stats", "--json"])
    jsonschema.validate(json.loads(stats.stdout), schema("dataset-stats"))
    plugins = CliRunner().invoke(command, ["--project", str(folder), "plugins", "--json"])
    jsonschema.validate(json.loads(plugins.stdout), schema("plugins"))


def test_reports_over_a_store_without_records_say_what_to_run(folder, cli, tmp_path):
    # the scores alone (enrich without publish): no annotation could be seen, so no answer
    scores_only = tmp_path / "scores.ttl"
    scores_only.write_text(
        "@prefix ml: <http://ns.inria.fr/monalia/> .\n"
        "<urn:detection:1> a ml:Detection ; ml:score 0.9 .\n",
        encoding="utf-8",
    )
    for args in (
        ("report", "noise", "--method", "confident"),
        ("report", "silence", "--method", "threshold"),
        ("search", "cheval"),
    ):
        result = cli(*args, "--store", str(scores_only), project=folder)
        assert result.exit_code != 0, args
        assert "no published records" in result.output and "monalia publish" in result.output


def test_users_remove_takes_a_user_off_the_list(folder, cli):
    from monalia.web.passwords import add_user

    add_user(folder / "workbench-users.txt", "paul", "battery staple")
    assert "paul" in cli("users", "list", project=folder).output
    assert cli("users", "remove", "paul", project=folder).exit_code == 0
    assert "paul" not in cli("users", "list", project=folder).output
    missing = cli("users", "remove", "paul", project=folder)
    assert missing.exit_code != 0 and "no user 'paul'" in missing.output


def test_regions_are_drawn_corrected_by_a_curator_and_published_as_annotations(folder, cli):
    from sqlalchemy import func

    from monalia.catalog.models import ImageRow, RecordRow, RegionRow

    with (folder / "monalia.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[sinks.annotations]\nplugin = "web-annotation"\npath = "annotations"\n')
    result = cli("enrich", "--regions", "--sink", "annotations", project=folder)
    assert result.exit_code == 0, result.output
    workbench, catalog, app = open_workbench(folder)
    with catalog.session() as session:
        iri, image_id, width, _, class_index = session.execute(
            select(
                RecordRow.iri,
                ImageRow.id,
                RegionRow.image_width,
                RegionRow.image_height,
                RegionRow.class_index,
            )
            .join(ImageRow, ImageRow.id == RegionRow.image_id)
            .join(RecordRow, RecordRow.id == ImageRow.record_id)
            .where(func.json_array_length(RegionRow.boxes) > 0)
            .order_by(RegionRow.image_id)
        ).first()
    class_uri = workbench.model.classes[class_index]["uri"]
    client = TestClient(app)
    page = client.get("/record", params={"iri": iri})
    assert page.status_code == 200
    assert f'data-class="{class_uri}"' in page.text and 'data-box="' in page.text
    assert "Where the classes are seen" in page.text
    token = csrf_of(page.text)

    def correct(box):
        return client.post(
            "/region",
            data={
                "record": iri,
                "class": class_uri,
                "image": image_id,
                **dict(zip("xywh", box, strict=True)),
            },
            headers={"X-CSRF-Token": token, "Accept": "application/json"},
        )

    assert correct((1, 2, width, 3)).status_code == 400  # past the image's right edge
    assert correct((1, 2, 0, 3)).status_code == 400  # no width
    answer = correct((1, 2, 10, 12))
    assert answer.status_code == 200, answer.text
    stored = [d for d in decisions(catalog) if d.kind == "region"]
    assert [(d.region, d.reviewer, d.class_uri) for d in stored] == [
        ([1, 2, 10, 12], "marie", class_uri)
    ]
    shown = client.get("/record", params={"iri": iri})
    assert 'class="region corrected"' in shown.text and "drawn by marie" in shown.text
    # an accepted noise decision beside it
    assert decide(client, token, iri, class_uri, "noise", "accept").status_code == 200
    # the box goes out with the other decisions: in the JSON export and the curation graph
    exported = cli(
        "review", "export", "--format", "json", "--out", str(folder / "r.json"), project=folder
    )
    assert exported.exit_code == 0, exported.output
    listed = json.loads((folder / "r.json").read_text(encoding="utf-8"))["decisions"]
    assert [d["region"] for d in listed if d["kind"] == "region"] == [[1, 2, 10, 12]]
    turtle = cli(
        "review", "export", "--format", "rdf", "--out", str(folder / "r.ttl"), project=folder
    )
    assert turtle.exit_code == 0, turtle.output
    from importlib.resources import files

    import rdflib
    from pyshacl import validate

    curation = rdflib.Graph().parse(folder / "r.ttl", format="turtle")
    assert '"xywh=1,2,10,12"' in (folder / "r.ttl").read_text(encoding="utf-8")
    shapes = rdflib.Graph().parse(
        data=(files("monalia.ontology") / "shapes.ttl").read_text(encoding="utf-8"),
        format="turtle",
    )
    conforms, _, report = validate(curation, shacl_graph=shapes)
    assert conforms, report

    # two records found to show the same picture
    from monalia.catalog.models import DuplicatePairRow, utcnow

    with catalog.session() as session:
        (a, ra, ia), (b, rb, ib) = session.execute(
            select(ImageRow.id, ImageRow.record_id, RecordRow.iri)
            .join(RecordRow, RecordRow.id == ImageRow.record_id)
            .order_by(ImageRow.id)
            .limit(2)
        ).all()
        session.add(
            DuplicatePairRow(
                group_number=1, image_a=a, image_b=b, record_a=ra, record_b=rb,
                similarity=0.991, method="embedding", embedder="test", threshold=0.95,
                found_at=utcnow(),
            )
        )  # fmt: skip
        session.commit()

    result = cli("publish", "--sink", "annotations", project=folder)
    assert result.exit_code == 0, result.output
    root = folder / "annotations"
    links = json.loads((root / "links" / "page-0.json").read_text(encoding="utf-8"))
    (link,) = links["items"]
    assert link["motivation"] == "linking" and link["target"] == [ia, ib]
    assert link["similarity"] == 0.991
    reviews = json.loads((root / "reviews" / "page-0.json").read_text(encoding="utf-8"))
    by_kind = {item["decision"]: item for item in reviews["items"]}
    drawn = by_kind["region:accept"]
    assert drawn["motivation"] == "editing"
    assert drawn["creator"] == {**drawn["creator"], "type": "Person", "nickname": "marie"}
    assert drawn["target"]["selector"]["value"] == "xywh=1,2,10,12"
    assert by_kind["noise:accept"]["motivation"] == "editing"
    assert by_kind["noise:accept"]["body"][0] == class_uri
    (model_folder,) = (root / "models").iterdir()
    collection = json.loads((model_folder / "collection.json").read_text(encoding="utf-8"))
    assert collection["total"] > 0
    first = json.loads((model_folder / "page-0.json").read_text(encoding="utf-8"))
    assert any("selector" in json.dumps(item["target"]) for item in first["items"])
    assert (model_folder / "model-card.json").is_file()


def test_the_sample_list_is_stratified_and_its_decisions_measure_precision(folder, cli):
    workbench, catalog, app = open_workbench(folder)
    client = TestClient(app)
    horse = workbench.classes[0]
    detections = workbench.items(horse.uri, "search")
    page = client.get("/findings?class=0&kind=sample&reviewed=all").text
    sampled = [record for record, _cls in cards(page)]
    assert len(sampled) == min(len(detections), 50) and len(set(sampled)) == len(sampled)
    assert cards(client.get("/findings?class=0&kind=sample&reviewed=all").text) == cards(page)
    if len(detections) > 50:  # the sample reaches the lower scores, not only the best
        lowest = sorted(d.finding.score for d in detections)[len(detections) // 5]
        scores = {d.finding.record: d.finding.score for d in detections}
        assert min(scores[r] for r in sampled) <= lowest
    token = csrf_of(page)
    for record, decision in zip(sampled[:3], ("accept", "accept", "reject"), strict=True):
        assert decide(client, token, record, horse.uri, "sample", decision).status_code == 200
    stored = decisions(catalog)
    assert {(d.kind, d.method) for d in stored} == {("search", "sample")}
    # a second reviewer disagrees on one of them
    _wb, _catalog, other = open_workbench(folder, reviewer="jean")
    second = TestClient(other)
    decide(second, csrf_of(second.get("/").text), sampled[0], horse.uri, "sample", "reject")
    stats = client.get("/stats").text
    row = re.search(
        r"<td>[^<]*</td><td>sample</td><td>(\d+)</td><td>(\d+)</td><td>([\d.]+)</td>", stats
    )
    assert row and row.groups() == ("3", "1", "0.33"), stats
    assert "1 findings decided by several reviewers" in stats.replace("0 of 1", "1") or (
        "0 of 1 findings decided by several reviewers agree" in stats
    )
    result = cli("review", "stats", "--format", "json", project=folder)
    data = json.loads(result.output)
    assert data["agreement"]["findings"] == 1 and data["agreement"]["unanimous"] == 0
    # the CLI draws the same kind of sample from the same detections
    sample = json.loads(
        cli(
            "review", "sample", horse.label, "--size", "10", "--format", "json", project=folder
        ).output
    )
    assert len(sample) == min(10, len(detections))


def read_subjects(folder: Path) -> dict[str, set[str]]:
    found = {}
    for line in (folder / "records.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        found[record["id"]] = {s["uri"] for s in record["subjects"] if isinstance(s, dict)}
    return found


def test_teach_a_class_from_examples_in_the_workbench_and_the_cli_then_label_learns_it(folder, cli):
    from sklearn.metrics import average_precision_score

    workbench, catalog, app = open_workbench(folder)
    client = TestClient(app)
    token = csrf_of(client.get("/teach").text)
    horse = workbench.classes[0].uri
    subjects = read_subjects(folder)
    with_horse = sorted(r for r, s in subjects.items() if horse in s)
    made = client.post(
        "/teach/new",
        data={"csrf": token, "label": "Cheval dessiné", "examples": "\n".join(with_horse[:5])},
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/teach/1"
    page = client.get("/teach/1").text
    asks = re.findall(r'class="card ask" data-record="([^"]+)"', page)
    assert len(asks) == 12 and "5 positives, 0 negatives" in page
    # answering the least sure retrains: the next page asks about others
    taught = re.search(r'name="class" value="([^"]+)"', page).group(1)
    assert taught.endswith("class/cheval-dessine")
    with catalog.session() as session:
        from monalia.catalog.models import RecordRow

        iri_of = dict(session.execute(select(RecordRow.iri, RecordRow.source_id)).all())
    truth = {iri: horse in subjects[source] for iri, source in iri_of.items()}
    for record in asks[:6]:
        answer = client.post(
            "/teach/answer",
            data={
                "csrf": token,
                "class": taught,
                "record": record,
                "shows": "yes" if truth[record] else "no",
            },
            headers={"Accept": "application/json"},
        )
        assert answer.status_code == 200 and answer.json()["shows"] == truth[record]
    again = re.findall(r'class="card ask" data-record="([^"]+)"', client.get("/teach/1").text)
    assert not set(again) & set(asks[:6])
    assert {d.kind for d in decisions(catalog)} == {"teach"}

    # the CLI: more answers, then the ranking of the whole collection
    no = [r for r, s in subjects.items() if horse not in s][:3]
    result = cli("teach", "answer", "Cheval dessiné", *[f"--no={r}" for r in no], project=folder)
    assert result.exit_code == 0 and "0 yes, 3 no" in result.output
    ranked = json.loads(
        cli(
            "teach", "rank", "cheval dessiné", "--limit", "200", "--format", "json", project=folder
        ).output
    )
    assert len(ranked) == len(truth)
    labels = [truth[e["record"]] for e in ranked]
    ap = average_precision_score(labels, [e["score"] for e in ranked])
    assert ap > sum(labels) / len(labels) + 0.15, ap  # far better than chance
    asked = json.loads(
        cli(
            "teach",
            "ask",
            "cheval dessiné",
            "--list",
            "--count",
            "5",
            "--format",
            "json",
            project=folder,
        ).output
    )
    assert len(asked) == 5 and all(e["answer"] is None for e in asked)
    listed = json.loads(cli("teach", "list", "--format", "json", project=folder).output)
    assert listed[0]["positives"] >= 5 and listed[0]["negatives"] >= 3
    refused = cli("teach", "new", "cheval dessiné", "--example", no[0], project=folder)
    assert refused.exit_code != 0 and "already taught" in refused.output

    # label takes the class in with its answers, and says so
    result = cli("label", project=folder)
    assert result.exit_code == 0, result.output
    assert "taught class Cheval dessiné:" in result.output
    with catalog.session() as session:
        newest = session.scalars(select(DatasetRow).order_by(DatasetRow.id.desc())).first()
        assert taught in [c["uri"] for c in newest.classes]


def test_the_audit_page_shows_problem_images_and_label_leaves_them_out(folder, cli):
    from PIL import Image

    catalog = Catalog.open(f"sqlite:///{folder / 'catalog.sqlite'}")
    with catalog.session() as session:
        from monalia.catalog.models import ImageRow

        first = session.scalars(select(ImageRow).order_by(ImageRow.id)).first()
        image_id, path = first.id, folder / ".monalia" / first.path
    Image.new("RGB", (80, 80), (250, 250, 250)).save(path, "JPEG")  # a blank scan
    result = cli("audit", "--no-dataset", "--format", "json", project=folder)
    assert result.exit_code == 0, result.output
    print(repr(result.output[:500]))
    found = json.loads(result.stdout)
    blank = [p for p in found if p["kind"] == "low_information"]
    assert [p["reference"] for p in blank] == ["r0"]
    _workbench, _catalog, app = open_workbench(folder)
    page = TestClient(app).get("/audit").text
    assert f'src="/image/{image_id}/thumb"' in page and "low_information" in page
    page = TestClient(app).get("/audit?kind=low_information").text
    assert page.count('class="card problem"') == 1
    # the HTML report has an audit page with thumbnails, and precision as reviewed
    assert cli("report", "html", str(folder / "site"), project=folder).exit_code == 0
    report = (folder / "site" / "audit.html").read_text(encoding="utf-8")
    assert report.count('class="card problem"') == len(found)
    assert re.search(r'<img src="thumbs/[0-9a-f]{64}\.jpg"', report)
    assert (folder / "site" / report.split('<img src="')[1].split('"')[0]).is_file()
    index = (folder / "site" / "index.html").read_text(encoding="utf-8")
    assert "Precision as reviewed" in index and 'href="audit.html"' in index
    with (folder / "monalia.toml").open("a", encoding="utf-8") as toml:
        toml.write('\n[audit]\nimage_checks = ["low_information"]\n')
    text = (folder / "monalia.toml").read_text(encoding="utf-8")
    (folder / "monalia.toml").write_text(
        text.replace("[dataset]\n", '[dataset]\nexclude_problems = ["low_information"]\n', 1),
        encoding="utf-8",
    )
    result = cli("label", project=folder)
    assert result.exit_code == 0, result.output
    assert "left out for their image's problems" in result.output
    assert "1 records (low_information 1)" in result.output


def test_the_map_in_a_real_browser(folder):
    from selenium.webdriver.common.action_chains import ActionChains
    from test_curation import browser

    driver = browser()
    server, base = start_server(folder)
    try:
        started = time.monotonic()
        driver.get(f"{base}/map")
        canvas = driver.find_element("css selector", "#map")
        for _ in range(600):
            if canvas.get_attribute("data-drawn"):
                break
            time.sleep(0.1)
        assert canvas.get_attribute("data-drawn") == "80", driver.find_element(
            "css selector", "#map-status"
        ).text
        assert time.monotonic() - started < 60
        points = driver.execute_script("return fetch('/map/points').then(r => r.json())")
        assert points["count"] == 80 and points["method"] == "umap"
        legend = driver.find_element("css selector", "#map-legend").text
        assert any(label in legend for label in points["classes"])
        # pointing at a point shows its picture
        size = canvas.size
        width, height = driver.execute_script(
            "const c = document.getElementById('map'); return [c.width, c.height]"
        )
        x = 10 + points["x"][0] / points["grid"] * (width - 20)
        y = 10 + (1 - points["y"][0] / points["grid"]) * (height - 20)
        scale = size["width"] / width
        ActionChains(driver).move_to_element_with_offset(
            canvas, x * scale - size["width"] / 2, y * scale - size["height"] / 2
        ).perform()
        preview = driver.find_element("css selector", "#map-preview")
        for _ in range(50):
            if "shown" in preview.get_attribute("class"):
                break
            time.sleep(0.1)
        assert "shown" in preview.get_attribute("class")
        assert preview.get_attribute("src").endswith(f"/image/{points['image'][0]}/thumb")
        # colour by finding: the legend names the kinds
        driver.execute_script(
            "const s = document.getElementById('map-colour'); s.value = 'finding';"
            "s.dispatchEvent(new Event('change'))"
        )
        assert "noise" in driver.find_element("css selector", "#map-legend").text
        # a box over the whole map selects every record; one is reviewed from the list
        ActionChains(driver).move_to_element_with_offset(
            canvas, -size["width"] / 2 + 2, -size["height"] / 2 + 2
        ).click_and_hold().move_by_offset(size["width"] - 4, size["height"] - 4).release().perform()
        for _ in range(100):
            listed = driver.find_elements("css selector", "#map-selection-list li")
            if listed:
                break
            time.sleep(0.1)
        assert len(listed) == 80
        assert "80 records" in driver.find_element("css selector", "#map-selection-title").text
        first = listed[0].get_attribute("data-record")
        listed[0].find_element("css selector", "button[data-decision='accept']").click()
        for _ in range(50):
            if "decided" in listed[0].get_attribute("class"):
                break
            time.sleep(0.1)
        catalog = Catalog.open(f"sqlite:///{folder / 'catalog.sqlite'}")
        [row] = decisions(catalog)
        assert (row.record_iri, row.kind, row.decision) == (first, "search", "accept")
        # a click opens the point's record
        ActionChains(driver).move_to_element_with_offset(
            canvas, x * scale - size["width"] / 2, y * scale - size["height"] / 2
        ).click().perform()
        for _ in range(50):
            if "/record?" in driver.current_url:
                break
            time.sleep(0.1)
        assert "/record?iri=" in driver.current_url
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
