"""A real IIIF viewer shows monalia's annotations: a manifest harvested from a local IIIF server,
its images scored and located (planted), published by the web-annotation sink, then opened in
Mirador (the npm package, served from a local copy) in headless Chromium, which lists the
annotation on the canvas."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select
from support.iiif_server import IiifServer

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, ModelRow, RegionRow, utcnow
from monalia.testing import store_scores

pytestmark = pytest.mark.slow

VIEWER = Path(__file__).parent / "viewer"
HORSE = "http://data.culture.fr/thesaurus/resource/ark:/67717/T523-2037"
V3 = "http://iiif.io/api/presentation/3/context.json"


def mirador() -> Path:
    """Mirador's bundle, installed from the lock file once (npm); skips without npm."""
    bundle = VIEWER / "node_modules" / "mirador" / "dist" / "mirador.min.js"
    if not bundle.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: Mirador cannot be installed")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=VIEWER,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or not bundle.is_file():
            pytest.skip(f"Mirador could not be installed: {done.stderr[-500:]}")
    return bundle


def manifest(base: str) -> dict:
    return {
        "@context": V3,
        "id": f"{base}/m/1.json",
        "type": "Manifest",
        "label": {"en": ["Rider"]},
        "items": [
            {
                "id": f"{base}/m/1/canvas/1",
                "type": "Canvas",
                "width": 2000,
                "height": 1500,
                "items": [
                    {
                        "id": f"{base}/m/1/page/1",
                        "type": "AnnotationPage",
                        "items": [
                            {
                                "id": f"{base}/m/1/anno/1",
                                "type": "Annotation",
                                "motivation": "painting",
                                "body": {
                                    "id": f"{base}/image/rider/full/max/0/default.jpg",
                                    "type": "Image",
                                    "format": "image/jpeg",
                                    "width": 2000,
                                    "height": 1500,
                                    "service": [
                                        {
                                            "id": f"{base}/image/rider",
                                            "type": "ImageService3",
                                            "profile": "level1",
                                        }
                                    ],
                                },
                                "target": f"{base}/m/1/canvas/1",
                            }
                        ],
                    }
                ],
            }
        ],
    }


class Folder(SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, *args):
        pass


def test_mirador_lists_a_monalia_annotation_on_a_harvested_canvas(tmp_path, cli):
    from test_curation import browser

    bundle = mirador()
    site = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Folder, directory=tmp_path))
    threading.Thread(target=site.serve_forever, daemon=True).start()
    served = f"http://127.0.0.1:{site.server_address[1]}"
    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    try:
        with IiifServer() as server:
            server.documents["/m/1.json"] = manifest(server.url)
            server.images["rider"] = (2000, 1500)
            (tmp_path / "monalia.toml").write_text(
                f"""
[project]
catalog = "{catalog_url}"

[sources.museum]
plugin = "iiif"
url = "{server.url}/m/1.json"

[sinks.annotations]
plugin = "web-annotation"
path = "annotations"
base_url = "{served}/annotations/"
manifests = true
""",
                encoding="utf-8",
            )
            for command in ("harvest", "images"):
                result = cli(command, project=tmp_path)
                assert result.exit_code == 0, result.output
            catalog = Catalog.open(catalog_url)
            with catalog.session() as session:
                image = session.execute(
                    select(ImageRow.id, ImageRow.record_id, ImageRow.width, ImageRow.height)
                ).one()
                model = ModelRow(
                    name="planted",
                    trainer="cnn",
                    classes=[{"uri": HORSE, "label": "cheval"}],
                    thresholds={HORSE: 0.5},
                    metrics={},
                    card={"name": "planted"},
                    created_at=utcnow(),
                )
                session.add(model)
                session.commit()
                model_id = model.id
            store_scores(
                catalog,
                model_id,
                [
                    {
                        "image_id": image.id,
                        "record_id": image.record_id,
                        "class_uri": HORSE,
                        "score": 0.93,
                    }
                ],
            )
            # the rider is in the fetched image's left half: a box in its pixels
            box = [0, 0, image.width // 2, image.height // 2]
            with catalog.session() as session:
                session.add(
                    RegionRow(
                        model_id=model_id,
                        image_id=image.id,
                        class_index=0,
                        record_id=image.record_id,
                        boxes=[box],
                        image_width=image.width,
                        image_height=image.height,
                        fraction=0.7,
                        made_at=utcnow(),
                    )
                )
                session.commit()
            result = cli("publish", "--sink", "annotations", project=tmp_path)
            assert result.exit_code == 0, result.output

            from iiif_prezi3 import AnnotationPage, Manifest

            (copy,) = (tmp_path / "annotations" / "manifests").glob("*.json")
            copied = json.loads(copy.read_text(encoding="utf-8"))
            Manifest(**copied)
            (listed,) = copied["items"][0]["annotations"]
            (page_file,) = (tmp_path / "annotations" / "iiif" / "planted").glob("*.json")
            page = json.loads(page_file.read_text(encoding="utf-8"))
            AnnotationPage(**page)
            assert listed["id"] == f"{served}/annotations/iiif/planted/{page_file.name}"
            # in the canvas's coordinates: the fetched image scaled up to 2000 x 1500
            assert page["items"][0]["target"] == f"{server.url}/m/1/canvas/1#xywh=0,0,1000,750"

            shutil.copyfile(bundle, tmp_path / "mirador.min.js")
            (tmp_path / "viewer.html").write_text(
                f"""<!doctype html><html><head><meta charset="utf-8"></head><body>
<div id="viewer" style="position:absolute;inset:0"></div>
<script src="mirador.min.js"></script>
<script>
Mirador.viewer({{
  id: "viewer",
  windows: [{{ manifestId: "{copied["id"]}" }}],
  window: {{ sideBarOpen: true, defaultSideBarPanel: "annotations" }},
}});
</script></body></html>""",
                encoding="utf-8",
            )
            driver = browser()
            try:
                driver.get(f"{served}/viewer.html")
                deadline = time.monotonic() + 60
                text = ""
                while time.monotonic() < deadline:
                    text = driver.find_element("tag name", "body").text
                    if "cheval (0.93)" in text:
                        break
                    time.sleep(0.5)
                if "cheval (0.93)" not in text:
                    console = [entry["message"] for entry in driver.get_log("browser")]
                    raise AssertionError(f"{text[-1500:]}\nconsole: {console[-10:]}")
            finally:
                driver.quit()
    finally:
        site.shutdown()
