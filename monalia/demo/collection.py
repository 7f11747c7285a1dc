"""`monalia demo`: a small collection made on the spot, taken through the whole pipeline.

Nothing is downloaded and no server runs. The sample is JocondeLab-shaped notices in an embedded
store, a thesaurus with Garnier's labels and URIs for three classes (cheval, arbre, bateau) and a
few narrower terms, and pictures drawn so that the classes are learnable: a horse is a red disc, a
tree a green triangle, a boat blue bars. A few notices are planted wrong on purpose: annotated
with a class their picture does not show (noise to find) or showing a class their annotation
lacks (silence to find). Their references are written to ``planted.json``.

A second learning task learns the technique (TECH): each picture's shapes are drawn filled
("aplat") or as outlines ("contour"). The thesaurus has English labels beside the French ones,
and an "animal" concept broader than "cheval", so `monalia search animal` has an answer.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox
from PIL import Image, ImageDraw, ImageFilter

from monalia.rdf.terms import JCL, SKOS, T523, nt_iri

DEMO = "urn:monalia:demo:"
HORSE, TREE, BOAT = T523 + "T523-2037", T523 + "T523-1220", T523 + "T523-6294"
SAILING_BOAT = T523 + "T523-6319"  # bateau à voiles, under bateau
FOAL, OAK = DEMO + "concept/poulain", DEMO + "concept/chene"  # narrower terms of the sample
CLASSES = {HORSE: ("cheval", "disc"), TREE: ("arbre", "triangle"), BOAT: ("bateau", "bars")}
NARROWER = {
    HORSE: [(FOAL, "poulain")],
    TREE: [(OAK, "chêne")],
    BOAT: [(SAILING_BOAT, "bateau à voiles")],
}
ANIMAL = DEMO + "concept/animal"  # broader than cheval: what `search animal` rolls up to
TECHNIQUES = DEMO + "scheme/techniques"
OUTLINE, FLAT = DEMO + "concept/contour", DEMO + "concept/aplat"
# French and English labels of every concept of the sample thesaurus
ENGLISH = {
    HORSE: "horse",
    TREE: "tree",
    BOAT: "boat",
    FOAL: "foal",
    OAK: "oak",
    SAILING_BOAT: "sailing boat",
    ANIMAL: "animal",
    OUTLINE: "outline",
    FLAT: "flat colour",
}
TECHNIQUE_LABELS = {OUTLINE: "contour", FLAT: "aplat"}
PLANTED_EACH = 6  # wrong notices of each kind
# where each picture shows each class: {reference: {class URI: [left, top, width, height]}},
# what localisation is measured against (bench/regions.py)
SHAPES_FILE = "shapes.json"

SHAPES = ("disc", "triangle", "bars")
COLOURS = {"disc": (200, 30, 30), "triangle": (20, 150, 40), "bars": (30, 60, 200)}


def draw(
    shapes: set[str],
    rng: random.Random,
    size: int = 96,
    placed: dict[str, list[int]] | None = None,
    outline: bool = False,
) -> Image.Image:
    """A picture holding `shapes` (names from SHAPES) over a noisy background, filled or drawn
    as thick outlines; `placed`, when given, receives each shape's box (left, top, width,
    height) in the picture's pixels."""
    background = tuple(rng.randint(150, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    for _ in range(12):  # clutter that belongs to no class
        x, y = rng.randint(0, size), rng.randint(0, size)
        grey = rng.randint(90, 200)
        pen.line((x, y, x + rng.randint(-20, 20), y + rng.randint(-20, 20)), fill=(grey,) * 3)
    # each shape in a quadrant of its own: a shape drawn over another would hide it, and the
    # picture would no longer show what its notice says (noise nobody planted)
    half = size // 2
    quadrants = rng.sample([(0, 0), (half, 0), (0, half), (half, half)], len(shapes))
    for shape, (left, top) in zip(sorted(shapes), quadrants, strict=True):
        side = rng.randint(size // 4, half - 2)
        x, y = left + rng.randint(0, half - side), top + rng.randint(0, half - side)
        colour = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in COLOURS[shape])
        if placed is not None:
            placed[shape] = [x, y, side + 1, side + 1]  # PIL's shapes include both edges
        fill, line = (None, colour) if outline else (colour, None)
        width = max(3, size // 24) if outline else 1
        if shape == "disc":
            pen.ellipse((x, y, x + side, y + side), fill=fill, outline=line, width=width)
        elif shape == "triangle":
            corners = [(x, y + side), (x + side, y + side), (x + side // 2, y)]
            if outline:
                pen.line([*corners, corners[0]], fill=colour, width=width, joint="curve")
            else:
                pen.polygon(corners, fill=colour)
        else:
            for offset in range(0, side, max(4, side // 4)):
                box = (x, y + offset, x + side, y + offset + max(side // 10, 2 * width))
                pen.rectangle(box, fill=fill, outline=line, width=width)
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))


@dataclass
class Sample:
    folder: Path
    notices: int
    noise: list[str] = field(default_factory=list)  # references annotated with what is not shown
    silence: list[str] = field(default_factory=list)  # references lacking what is shown


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _labels(uri: str, french: str) -> str:
    return f"skos:prefLabel {_literal(french)}@fr, {_literal(ENGLISH[uri])}@en"


def thesaurus_turtle() -> str:
    lines = [f"@prefix skos: <{SKOS}> .", ""]
    scheme = nt_iri(T523 + "T523")
    lines.append(
        f"{nt_iri(ANIMAL)} a skos:Concept ; skos:inScheme {scheme} ; "
        f"{_labels(ANIMAL, 'animal')} ; skos:narrower {nt_iri(HORSE)} ."
    )
    for uri, (label, _) in CLASSES.items():
        narrower = ", ".join(nt_iri(n) for n, _ in NARROWER[uri])
        broader = f" ; skos:broader {nt_iri(ANIMAL)}" if uri == HORSE else ""
        lines.append(
            f"{nt_iri(uri)} a skos:Concept ; skos:inScheme {scheme} ; "
            f"{_labels(uri, label)} ; skos:narrower {narrower}{broader} ."
        )
        for concept, name in NARROWER[uri]:
            lines.append(
                f"{nt_iri(concept)} a skos:Concept ; skos:inScheme {scheme} ; "
                f"{_labels(concept, name)} ; skos:broader {nt_iri(uri)} ."
            )
    for uri, label in TECHNIQUE_LABELS.items():
        lines.append(
            f"{nt_iri(uri)} a skos:Concept ; skos:inScheme {nt_iri(TECHNIQUES)} ; "
            f"{_labels(uri, label)} ."
        )
    return "\n".join(lines) + "\n"


PROJECT = """# The demo project `monalia demo` made: every stage on the embedded sample, no server.
[project]
name = "demo"
catalog = "sqlite:///.monalia/catalog.sqlite"
base_iri = "urn:monalia:demo:"
allow_file_urls = true   # the demo's images are files beside it, named by its local store

[sources.jocondelab]
plugin = "joconde-sparql"
endpoint = "jocondelab"   # the embedded store holding the notices (a folder)
image_base = "{images}"

[thesaurus]
files = ["garnier-sample.ttl"]

# two learning tasks: what the pictures show (the first, the default of every command) and how
# they are drawn; `--task technique` picks the second
[tasks.subjects]
fields = ["REPR", "REPR_text"]
targets = ["cheval", "arbre", "bateau"]
dataset = "demo"

[tasks.technique]
fields = ["TECH"]
targets = ["contour", "aplat"]
schemes = ["{techniques}"]

[dataset]
min_per_class = 10
negatives = 0.5  # pictures of none of the classes, so the model learns to say so

[trainer]
plugin = "cnn"
input_size = 64
epochs = {epochs}
batch_size = 16
workers = 0
lr_step = 4
crop_scale = [0.85, 1.0]  # the shapes sit anywhere up to the corners: crops must keep them
grayscale = 0.0  # colour is part of what tells the shapes apart

[sinks.turtle]
plugin = "turtle"
path = "out/{{graph}}.ttl"

[sinks.store]
plugin = "embedded-store"
path = "store"

[sinks.annotations]  # W3C Web Annotations of the detections and their regions
plugin = "web-annotation"
path = "out/annotations"

[enrich]
records = true
regions = true  # where each detection is seen, drawn as boxes in the workbench and report
workers = 0
batch_size = 32

[pipeline]
stages = ["harvest", "images", "label", "train", "enrich"]
"""


def build_sample(folder: Path, notices: int = 300, seed: int = 7, epochs: int = 4) -> Sample:
    """Write the sample collection and its project file into `folder`."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    images = folder / "images"
    images.mkdir(exist_ok=True)
    (folder / "garnier-sample.ttl").write_text(thesaurus_turtle(), encoding="utf-8")
    sample = Sample(folder, notices)
    wrong = rng.sample(range(notices), 2 * PLANTED_EACH)
    noise_at, silence_at = set(wrong[:PLANTED_EACH]), set(wrong[PLANTED_EACH:])
    shapes: dict[str, dict[str, list[int]]] = {}  # where each shown class was drawn
    lines = [f"@prefix jcl: <{JCL}> .", f"@prefix skos: <{SKOS}> .", ""]
    for uri, (label, _) in CLASSES.items():
        lines.append(f"{nt_iri(uri)} skos:prefLabel {_literal(label)}@fr .")
        for concept, name in NARROWER[uri]:
            lines.append(f"{nt_iri(concept)} skos:prefLabel {_literal(name)}@fr .")
    for number in range(notices):
        ref = f"DEMO{number:05d}"
        shown = [uri for uri in CLASSES if rng.random() < 0.4]
        annotated = list(shown)
        if number in noise_at:  # annotate a class the picture does not show
            absent = [uri for uri in CLASSES if uri not in shown]
            if not absent:
                shown.pop()
                absent = [uri for uri in CLASSES if uri not in shown]
                annotated = list(shown)
            extra = rng.choice(absent)
            annotated.append(extra)
            sample.noise.append(f"{ref} {CLASSES[extra][0]}")
        if number in silence_at:  # show a class the annotation lacks
            missing = [uri for uri in CLASSES if uri not in shown] or [rng.choice(list(CLASSES))]
            hidden = rng.choice(missing)
            if hidden not in shown:
                shown.append(hidden)
            annotated = [uri for uri in annotated if uri != hidden]
            sample.silence.append(f"{ref} {CLASSES[hidden][0]}")
        placed: dict[str, list[int]] = {}
        # the technique from a stream of its own: the classes and plants stay as they were
        technique = random.Random(ref + "/technique").choice(list(TECHNIQUE_LABELS))
        outline = technique == OUTLINE
        picture = draw({CLASSES[uri][1] for uri in shown}, random.Random(ref), 96, placed, outline)
        picture.save(images / f"{ref}.jpg", "JPEG", quality=90)
        shapes[ref] = {uri: placed[CLASSES[uri][1]] for uri in shown}
        terms, texts = [], []
        for uri in annotated:  # a third by a narrower term, a third as text, the rest by URI
            way = rng.random()
            if way < 0.33:
                terms.append(rng.choice(NARROWER[uri])[0])
            elif way < 0.66:
                texts.append(CLASSES[uri][0])
            else:
                terms.append(uri)
        notice = nt_iri(f"{DEMO}notice/{ref}")
        parts = [
            f"{notice} a jcl:Notice ; jcl:noticeRef {_literal(ref)} ;",
            f"    jcl:noticeTitr {_literal(f'Étude n° {number}')} ; jcl:noticeHasImage true ;",
            f"    jcl:noticeImage [ jcl:noticeImageIsMain true ; jcl:noticeImagePath {_literal(ref + '.jpg')} ]",
        ]
        if terms:
            parts.append("    ; jcl:noticeReprTerm " + ", ".join(nt_iri(t) for t in terms))
        if texts:
            parts.append(f"    ; jcl:noticeRepr {_literal(' ; '.join(texts))}")
        if not terms and not texts:
            parts.append(f"    ; jcl:noticeRepr {_literal('paysage')}")
        if shown:  # a picture with no shape has no technique to see
            parts.append(f"    ; jcl:noticeTech {_literal(TECHNIQUE_LABELS[technique])}")
        lines.append("\n".join(parts) + " .")
    store_dir = folder / "jocondelab"
    if store_dir.exists():
        shutil.rmtree(store_dir)
    store = ox.Store(str(store_dir))
    store.load("\n".join(lines).encode("utf-8"), format=ox.RdfFormat.TURTLE)
    store.flush()
    del store
    (folder / "monalia.toml").write_text(
        PROJECT.format(
            images=images.resolve().as_uri() + "/", epochs=epochs, techniques=TECHNIQUES
        ),
        encoding="utf-8",
    )
    (folder / SHAPES_FILE).write_text(json.dumps(shapes, indent=1), encoding="utf-8")
    (folder / "planted.json").write_text(
        json.dumps({"noise": sample.noise, "silence": sample.silence}, indent=2), encoding="utf-8"
    )
    return sample
