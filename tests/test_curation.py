"""Search, noise and silence over the extended metadata, from the embedded store and from a
SPARQL server: the planted cases are found, rows are ranked by score and each row is right."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import write_jsonl
from sqlalchemy import select, update
from support.skos_data import DOG, FOAL, HORSE, OAK, THESAURUS_TTL, TREE

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, ModelRow, RecordRow, utcnow
from monalia.testing import store_scores

MODEL = "planted-curation"
CLASSES = [
    {"uri": HORSE, "label": "cheval"},
    {"uri": TREE, "label": "arbre"},
    {"uri": DOG, "label": "chien"},
]

PROJECT = """
[project]
catalog = "{catalog}"

[sources.collection]
plugin = "jsonl"
path = "records.jsonl"

[thesaurus]
files = ["garnier.ttl"]

[classes]
targets = ["{horse}", "{tree}", "{dog}"]

[sinks.store]
plugin = "embedded-store"
path = "store"

[enrich]
records = true
"""

# (subjects, {class: score per image}) per record; a class with no score is scored 0.3
PLANTED = {
    # annotated with cheval (URI), scored low: noise
    "horse-uri-low": ([{"uri": HORSE}], {HORSE: [0.05]}),
    # a narrower term (poulain) annotates cheval too: noise
    "foal-low": ([{"uri": FOAL}], {HORSE: [0.12]}),
    # a subject text that is a label of cheval ("chevaux", hidden label), scored low: noise
    "horse-text-low": (["Chevaux"], {HORSE: [0.08]}),
    # annotated and scored low on one image but high on the other: not noise
    "horse-two-images": ([{"uri": HORSE}], {HORSE: [0.04, 0.97]}),
    # annotated, scored fine
    "horse-ok": ([{"uri": HORSE}], {HORSE: [0.93]}),
    # not annotated with cheval, scored very high: silence (and the best search hit)
    "horse-missing": (["paysage"], {HORSE: [0.99]}),
    # not annotated with arbre; chêne (narrower) would count, this one has none: silence
    "tree-missing": ([{"uri": DOG}], {TREE: [0.95], DOG: [0.9]}),
    # annotated with chêne, scored high for arbre: neither noise nor silence
    "oak-ok": ([{"uri": OAK}], {TREE: [0.96]}),
    # annotated with chien, scored just under the default noise threshold (0.1): noise
    "dog-low": ([{"uri": DOG}], {DOG: [0.09]}),
}
# cheval's thresholds come from the card; arbre and chien fall back to 0.1 / 0.9
CURATION = {HORSE: {"noise_below": 0.2, "silence_above": 0.85}}


def build(folder, catalog_url, cli, extra: str = "") -> Catalog:
    records = []
    for name, (subjects, scores) in PLANTED.items():
        images = max(len(values) for values in scores.values())
        records.append(
            {
                "id": name,
                "title": f"Œuvre « {name} »",
                "images": [f"https://img.example.org/{name}/{n}.jpg" for n in range(images)],
                "subjects": subjects,
            }
        )
    write_jsonl(folder / "records.jsonl", records)
    (folder / "garnier.ttl").write_text(THESAURUS_TTL, encoding="utf-8")
    (folder / "monalia.toml").write_text(
        PROJECT.format(catalog=catalog_url, horse=HORSE, tree=TREE, dog=DOG) + extra,
        encoding="utf-8",
    )
    assert cli("harvest", project=folder).exit_code == 0
    catalog = Catalog.open(catalog_url)
    now = utcnow()
    with catalog.session() as session:
        session.execute(update(ImageRow).values(status="fetched", sha256=ImageRow.url))
        model = ModelRow(
            name=MODEL,
            trainer="cnn",
            classes=CLASSES,
            thresholds={entry["uri"]: 0.5 for entry in CLASSES},
            metrics={"curation": CURATION},
            path="models/planted",
            created_at=now,
        )
        session.add(model)
        session.flush()
        model_id = model.id
        rows = []
        images = session.execute(
            select(ImageRow.id, ImageRow.record_id, ImageRow.position, RecordRow.source_id).join(
                RecordRow, RecordRow.id == ImageRow.record_id
            )
        ).all()
        for image_id, record_id, position, name in images:
            scores = PLANTED[name][1]
            for entry in CLASSES:
                values = scores.get(entry["uri"])
                rows.append(
                    {
                        "model_id": model_id,
                        "image_id": image_id,
                        "record_id": record_id,
                        "class_uri": entry["uri"],
                        "score": values[position] if values else 0.3,
                        "image_sha256": f"https://img.example.org/{name}/{position}.jpg",
                        "scored_at": now,
                    }
                )
    store_scores(catalog, model_id, rows)
    result = cli("enrich", "--publish-only", project=folder)
    assert result.exit_code == 0, result.output
    return catalog


def as_json(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def found(rows) -> list[tuple[str, str, float]]:
    return [(row["reference"], row["class_label"], row["score"]) for row in rows]


def test_noise_and_silence_find_the_planted_cases(tmp_path, catalog_url, cli):
    build(tmp_path, catalog_url, cli)
    noise = as_json(cli("report", "noise", "--format", "json", project=tmp_path))
    assert found(noise) == [
        ("horse-uri-low", "cheval", 0.05),
        ("horse-text-low", "cheval", 0.08),
        ("dog-low", "chien", 0.09),
        ("foal-low", "cheval", 0.12),
    ]
    assert all(row["annotated"] for row in noise)
    assert noise[0]["title"] == "Œuvre « horse-uri-low »"
    assert noise[1]["subjects"] == ["Chevaux"]

    silence = as_json(cli("report", "silence", "--format", "json", project=tmp_path))
    assert found(silence) == [
        ("horse-missing", "cheval", 0.99),
        ("tree-missing", "arbre", 0.95),
    ]
    assert not any(row["annotated"] for row in silence)

    # one threshold for all classes, and one class only
    lower = as_json(
        cli(
            "report",
            "noise",
            "--below",
            "0.1",
            "--class",
            "cheval",
            "--format",
            "json",
            project=tmp_path,
        )
    )
    assert found(lower) == [("horse-uri-low", "cheval", 0.05), ("horse-text-low", "cheval", 0.08)]


def test_search_ranks_by_score_and_says_what_the_metadata_mentions(tmp_path, catalog_url, cli):
    build(tmp_path, catalog_url, cli)
    rows = as_json(cli("search", "cheval", "--format", "json", project=tmp_path))
    # at or above the class's threshold (0.5), each record once with its best image
    assert [(row["reference"], row["score"], row["annotated"]) for row in rows] == [
        ("horse-missing", 0.99, False),
        ("horse-two-images", 0.97, True),
        ("horse-ok", 0.93, True),
    ]
    assert rows[1]["image"] == "https://img.example.org/horse-two-images/1.jpg"
    # a narrower concept, or a label of one, finds its class
    by_foal = as_json(
        cli("search", FOAL, "--min-score", "0.9", "--format", "json", project=tmp_path)
    )
    assert [row["reference"] for row in by_foal] == [
        "horse-missing",
        "horse-two-images",
        "horse-ok",
    ]
    trees = as_json(cli("search", "chêne", "--format", "json", project=tmp_path))
    assert [(r["reference"], r["annotated"]) for r in trees] == [
        ("oak-ok", True),
        ("tree-missing", False),
    ]

    table = cli("search", "arbre", "--limit", "1", project=tmp_path)
    assert table.exit_code == 0 and "oak-ok" in table.stdout and "tree-missing" not in table.stdout
    unknown = cli("search", "licorne", project=tmp_path)
    assert unknown.exit_code != 0
    assert "no class 'licorne'" in unknown.output and "arbre, cheval, chien" in unknown.output

    # CSV: the JSON's fields, under the same names
    as_csv = cli("search", "arbre", "--format", "csv", project=tmp_path).stdout
    first = next(csv.DictReader(io.StringIO(as_csv)))
    assert list(first) == list(
        as_json(cli("search", "arbre", "--format", "json", project=tmp_path))[0]
    )
    assert (first["reference"], first["class_label"], first["score"]) == ("oak-ok", "arbre", "0.96")


def test_a_remote_sparql_store_answers_as_the_embedded_one(tmp_path, catalog_url, cli, oxigraph):
    extra = f"""
[sinks.remote]
plugin = "sparql-store"
preset = "oxigraph"
url = "{oxigraph.url}"
"""
    build(tmp_path, catalog_url, cli, extra)
    for command in (["report", "noise"], ["report", "silence"], ["search", "arbre"]):
        local = as_json(cli(*command, "--format", "json", "--store", "store", project=tmp_path))
        remote = as_json(cli(*command, "--format", "json", "--store", "remote", project=tmp_path))
        assert remote == local and local
    # an endpoint URL works too
    by_url = as_json(
        cli(
            "report", "silence", "--format", "json", "--store", oxigraph.query_url, project=tmp_path
        )
    )
    assert found(by_url) == [("horse-missing", "cheval", 0.99), ("tree-missing", "arbre", 0.95)]


def _summary(findings):
    return [(f.record, f.class_uri, f.score, f.image, f.annotated) for f in findings]


def test_the_curation_bands_answer_as_reading_every_score(tmp_path, catalog_url, cli):
    """The bands `enrich` writes are an index: the answers are those of the full queries, and
    the metadata as it is now decides, not as it was when the scores were published."""
    from monalia.curation.findings import Curation
    from monalia.curation.session import open_curation
    from monalia.project import load_project

    catalog = build(tmp_path, catalog_url, cli)
    project = load_project(tmp_path / "monalia.toml")

    def answers(setup, banded: bool):
        curation = setup.curation
        if not banded:
            curation = Curation(curation.client, curation.graph, curation.classes)
            curation._banded = False
        by_class = {
            (cls.label, minimum): _summary(curation.search(cls, minimum))
            for cls in curation.classes
            for minimum in (None, 0.2, 0.95)  # 0.2 is under the bands: read in full
        }
        return _summary(curation.noise()), _summary(curation.silence()), by_class

    setup = open_curation(catalog, project)
    assert setup.curation.banded
    noise, silence, searches = answers(setup, banded=True)
    assert (noise, silence, searches) == answers(setup, banded=False)
    assert [f[0].rsplit("/", 1)[-1] for f in noise] == [
        "horse-uri-low",
        "horse-text-low",
        "dog-low",
        "foal-low",
    ]
    assert searches["cheval", 0.2][-1][2] == 0.3  # the low scores are there when asked for

    # a curator fixes the metadata at the source: the noise loses its subject, the silence
    # gains one; harvested and published again (which rewrites the mention index), both drop
    # out of the reports without publishing the scores again
    assert setup.curation.indexed, "enrich wrote the model's mention index"
    del setup
    lines = (tmp_path / "records.jsonl").read_text(encoding="utf-8").splitlines()
    fixed = []
    for line in lines:
        record = json.loads(line)
        if record["id"] == "horse-uri-low":
            record["subjects"] = []
        if record["id"] == "tree-missing":
            record["subjects"].append({"label": "Arbre", "lang": "fr"})
        fixed.append(json.dumps(record))
    (tmp_path / "records.jsonl").write_text("\n".join(fixed) + "\n", encoding="utf-8")
    assert cli("harvest", project=tmp_path).exit_code == 0
    assert cli("publish", project=tmp_path).exit_code == 0
    setup = open_curation(catalog, project)
    noise, silence, _ = answers(setup, banded=True)
    assert "horse-uri-low" not in str(noise) and "tree-missing" not in str(silence)
    assert (noise, silence) == answers(setup, banded=False)[:2]


def test_no_store_to_query_is_one_clear_line(tmp_path, cli):
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path}/c.sqlite"\n', encoding="utf-8"
    )
    catalog = Catalog.open(f"sqlite:///{tmp_path}/c.sqlite")
    with catalog.session() as session:
        session.add(ModelRow(name="m", trainer="cnn", classes=CLASSES, created_at=utcnow()))
    result = cli("report", "noise", project=tmp_path)
    assert result.exit_code != 0
    assert "nothing to query" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["noise", "silence"])
def test_report_help_explains_itself(cli, kind):
    result = cli("report", kind, "--help")
    assert result.exit_code == 0 and "Thresholds per class" in result.output


def browser():
    """Headless Chromium from Debian's packages, driven by Selenium; skips when absent."""
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_html_report_renders_with_its_images_in_a_real_browser(tmp_path, cli):
    import hashlib

    from support.drawn_images import draw

    catalog = build(tmp_path, f"sqlite:///{tmp_path / 'catalog.sqlite'}", cli)
    # local copies of the images, as the image stage leaves them
    with catalog.session() as session:
        for image_id, url in session.execute(select(ImageRow.id, ImageRow.url)).all():
            path = tmp_path / "images" / f"{hashlib.sha256(url.encode()).hexdigest()}.jpg"
            path.parent.mkdir(exist_ok=True)
            draw({"disc"}, __import__("random").Random(url), size=96).save(path, "JPEG")
            session.execute(update(ImageRow).where(ImageRow.id == image_id).values(path=str(path)))
    out = tmp_path / "site"
    result = cli("report", "html", str(out), project=tmp_path)
    assert result.exit_code == 0, result.output
    # a thumbnail per image shown: all but horse-two-images' low-scored one, in no result
    assert (out / "index.html").is_file() and len(list((out / "thumbs").glob("*.jpg"))) == 9

    driver = browser()
    try:
        driver.get((out / "noise.html").as_uri())
        cards = driver.find_elements("css selector", ".card")
        assert len(cards) == 4
        assert "horse-uri-low" in cards[0].text and "0.0500" in cards[0].text
        loaded = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        )
        assert loaded and all(loaded)
        driver.get((out / "silence.html").as_uri())
        assert "horse-missing" in driver.find_elements("css selector", ".card")[0].text
        driver.get((out / "index.html").as_uri())
        rows = driver.find_elements("css selector", "table.classes tr")
        assert [r.find_elements("css selector", "td")[0].text for r in rows[1:]] == [
            "cheval",
            "arbre",
            "chien",
        ]
        driver.get((out / "noise.html").as_uri())
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
