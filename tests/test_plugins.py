"""Plugins: discovery through entry points, a third-party package built and installed, hooks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_monalia
from support.packages import install_into

from monalia import hookimpl
from monalia.api import hookspecs
from monalia.api.registry import PluginRegistry, get_plugin_manager
from monalia.api.source import Source
from monalia.errors import PluginError

REPO = Path(__file__).resolve().parent.parent

THIRD_PARTY_PLUGIN = '''
"""A museum's own sources, shipped in its own package: one read item by item, one crawled by
a Scrapy spider of its own."""

import json

import scrapy

from monalia import CrawlSpec, Record, RawItem, Source, hookimpl
from monalia.api.plugin import PluginSettings


class Settings(PluginSettings):
    count: int = 3


class TinyMuseumSource(Source):
    """Objects of the Tiny Museum."""

    name = "tiny-museum"
    Settings = Settings

    def items(self, state):
        for i in range(self.settings.count):
            yield RawItem(key=str(i), payload={"n": i}, checkpoint=i)

    def parse(self, item):
        n = item.payload["n"]
        return Record(source_id=f"tiny-{n}", title=f"Tiny object {n}", raw=item.payload)


class TinySpider(scrapy.Spider):
    """Reads a JSON list of objects from one URL."""

    name = "tiny"

    def __init__(self, start_url, skip=(), **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start_url]
        self.skip = set(skip)
        self.skipped = 0

    def parse(self, response):
        for obj in json.loads(response.text):
            if obj["id"] in self.skip:
                self.skipped += 1
                continue
            yield {"kind": "object", "key": obj["id"], "payload": obj}


class CrawledSettings(PluginSettings):
    path: str


class TinyCrawledSource(Source):
    """Objects of the Tiny Museum, crawled."""

    name = "tiny-crawled"
    Settings = CrawledSettings

    def crawl(self):
        url = self.context.path(self.settings.path).as_uri()
        return CrawlSpec(
            spider="tiny_museum_monalia.TinySpider", arguments={"start_url": url}, start_url=url
        )

    def parse(self, item):
        obj = item.payload
        return Record(source_id=obj["id"], title=obj["title"], raw=obj)


@hookimpl
def register_sources():
    return [TinyMuseumSource, TinyCrawledSource]
'''


def plugin_package(folder: Path, name: str, version: str, module: str, code: str) -> Path:
    """The source of a distribution whose `monalia` entry point is its one module."""
    (folder / module).mkdir(parents=True)
    (folder / module / "__init__.py").write_text(code)
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=64"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "{version}"

            [project.entry-points.monalia]
            {name.removesuffix("-monalia")} = "{module}"
            """
        )
    )
    return folder


@pytest.fixture(scope="module")
def third_party_site(tmp_path_factory):
    """A real distribution with an entry point, built in a temp dir and installed into a folder."""
    root = tmp_path_factory.mktemp("tiny")
    package = plugin_package(
        root / "src", "tiny-museum-monalia", "1.2.3", "tiny_museum_monalia", THIRD_PARTY_PLUGIN
    )
    site = root / "site"
    install_into(site, package)
    return site


def test_built_ins_come_from_monalias_own_entry_points():
    registry = PluginRegistry(get_plugin_manager())
    names = {(p.kind, p.name): p.origin.package for p in registry.all()}
    assert names[("source", "jsonl")] == "monalia"
    assert names[("source", "rdf-file")] == "monalia"
    assert names[("sink", "turtle")] == "monalia"


def test_plugins_load_on_demand_the_one_asked_for_first():
    """A command reading a project imports the plugins it names, not every one installed
    (here without the manifest, which a run on the same machine may have written)."""
    pm = get_plugin_manager(on_demand=True, use_manifest=False)
    registry = PluginRegistry(pm)
    assert registry.plugins == {}
    assert registry.get("sink", "turtle").origin.package == "monalia"
    loaded = {name for name, _ in pm.list_name_plugin()}
    assert "turtle" in loaded and "jsonl" not in loaded
    # an entry point of another name (joconde registers joconde-sparql): all are loaded to find it
    assert registry.get("source", "joconde-sparql").origin.package == "monalia"
    assert "jsonl" in {name for name, _ in pm.list_name_plugin()} and not pm.pending
    assert {p.name for p in registry.all()} == {
        p.name for p in PluginRegistry(get_plugin_manager()).all()
    }


@pytest.mark.slow
def test_third_party_plugin_is_listed_and_usable_by_name(third_party_site, tmp_path):
    listed = run_monalia("plugins", "--json", cwd=tmp_path, site=third_party_site)
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["tiny-museum"]["package"] == "tiny-museum-monalia"
    assert plugins["tiny-museum"]["version"] == "1.2.3"
    assert plugins["tiny-museum"]["kind"] == "source"

    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n[sources.tiny]\nplugin = "tiny-museum"\ncount = 4\n'
    )
    harvested = run_monalia("-q", "harvest", cwd=tmp_path, site=third_party_site)
    assert harvested.returncode == 0, harvested.stderr
    assert re.search(r"tiny\s*│\s*tiny-museum\s*│\s*done\s*│\s*4\s*│\s*4", harvested.stdout), (
        harvested.stdout
    )

    # a crawled source of its own, with its own spider: the crawl process runs what it names
    objects = [{"id": f"obj-{n}", "title": f"Crawled object {n}"} for n in range(5)]
    (tmp_path / "objects.json").write_text(json.dumps(objects))
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n'
        '[sources.crawled]\nplugin = "tiny-crawled"\npath = "objects.json"\n'
    )
    crawled = run_monalia("-q", "harvest", cwd=tmp_path, site=third_party_site)
    assert crawled.returncode == 0, crawled.stderr
    assert re.search(r"crawled\s*│\s*tiny-crawled\s*│\s*done\s*│\s*5\s*│\s*5", crawled.stdout), (
        crawled.stdout + crawled.stderr
    )
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n[sources.tiny]\nplugin = "tiny-museum"\ncount = 4\n'
    )

    # without the package installed, the same project file names an unknown plugin
    missing = run_monalia("-q", "harvest", cwd=tmp_path)
    assert missing.returncode != 0
    assert "unknown source plugin 'tiny-museum'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr


OBSERVER_PLUGIN = '''
"""An institution's own record of every stage monalia runs: hooks only, no plugin class."""

from pathlib import Path

from monalia import hookimpl


@hookimpl
def stage_finished(run):
    with Path("observed.txt").open("a", encoding="utf-8") as out:
        out.write(f"{run.stage} {run.status} {run.counts['new']}\\n")
'''


def test_a_package_that_only_observes_stages_is_called_with_or_without_the_manifest(tmp_path):
    """A package whose entry point implements hooks and registers no plugin is still loaded
    when a command reads the plugin manifest (which lists every entry point and the hooks it
    implements), and only such packages are loaded for a stage's hooks."""
    from conftest import sample_records, write_jsonl

    package = plugin_package(
        tmp_path / "src", "observer-monalia", "0.1", "observer_monalia", OBSERVER_PLUGIN
    )
    site = tmp_path / "site"
    install_into(site, package)
    project = tmp_path / "project"
    project.mkdir()
    write_jsonl(project / "objects.jsonl", sample_records(5))
    (project / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n'
        '[sources.objects]\nplugin = "jsonl"\npath = "objects.jsonl"\n'
    )
    cache = tmp_path / "cache"
    for _ in range(2):  # the first run writes the manifest, the second reads it
        done = run_monalia("-q", "harvest", "--restart", cwd=project, site=site, cache=cache)
        assert done.returncode == 0, done.stderr
    assert (project / "observed.txt").read_text().splitlines() == [
        "harvest done 5",
        "harvest done 0",
    ]
    manifest = json.loads(next(cache.glob("plugins-*.json")).read_text())
    observer = next(e for e in manifest["entry_points"] if e["name"] == "observer")
    assert observer["package"] == "observer-monalia" and observer["hooks"] == ["stage_finished"]
    sources = next(e for e in manifest["entry_points"] if e["name"] == "jsonl")
    assert sources["hooks"] == ["register_sources"]

    pm = get_plugin_manager(on_demand=True)
    pm._manifest = manifest  # what a command of that environment reads
    assert pm.observing_entry_points() == ["observer"]  # the one loaded for a stage's hooks


def test_broken_plugin_is_reported_without_hiding_the_others(tmp_path):
    dist = tmp_path / "broken_monalia-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-monalia\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[monalia]\nbroken = broken_monalia_module_missing\n")
    listed = run_monalia("plugins", "--json", cwd=tmp_path, site=tmp_path)
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert (
        plugins["broken"]["kind"] == "broken"
        and "ModuleNotFoundError" in plugins["broken"]["error"]
    )
    assert plugins["jsonl"]["kind"] == "source"


def test_two_plugins_with_one_name_are_an_error():
    class One(Source):
        name = "twin"

    class Two(Source):
        name = "twin"

    class First:
        @hookimpl
        def register_sources(self):
            return [One]

    class Second:
        @hookimpl
        def register_sources(self):
            return [Two]

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(First())
    pm.register(Second())
    with pytest.raises(PluginError, match="two source plugins are named 'twin'"):
        PluginRegistry(pm)


def test_registering_a_class_of_the_wrong_kind_is_an_error():
    class NotASink:
        name = "nope"

    class Plugin:
        @hookimpl
        def register_sinks(self):
            return [NotASink]

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Plugin())
    with pytest.raises(PluginError, match=r"not a subclass of monalia\.Sink"):
        PluginRegistry(pm)


def test_every_hookspec_is_documented_and_called_by_a_test():
    guide = (REPO / "docs" / "how-to" / "write-a-plugin.md").read_text(encoding="utf-8")
    tests = "".join(p.read_text(encoding="utf-8") for p in (REPO / "tests").glob("test_*.py"))
    for name in hookspecs.all_hookspec_names():
        assert f"`{name}`" in guide, f"hook {name} has no line in the plugin guide"
        assert re.search(rf"\b(def\s+|hook\.){name}\b", tests), (
            f"no test implements or calls {name}"
        )


def test_the_plugin_manifest_holds_until_something_installed_or_a_plugin_file_changes(
    tmp_path, monkeypatch
):
    from monalia.api.manifest import load_manifest, manifest_file
    from monalia.api.registry import current_manifest

    monkeypatch.setenv("MONALIA_CACHE_DIR", str(tmp_path / "cache"))
    built = current_manifest()
    assert manifest_file().is_file() and load_manifest() == built
    entry = next(p for p in built["plugins"] if p["name"] == "joconde-sparql")
    assert entry["entry_point"] == "joconde" and entry["package"] == "monalia"
    assert entry["settings_schema"]["properties"]  # its settings, as JSON Schema

    # a plugin's source edited (an editable install): the manifest is no longer trusted
    source = next(path for path in built["files"] if path.endswith("jocondelab.py"))
    before = os.stat(source)
    try:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        assert load_manifest() is None
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load_manifest() == built

    # a distribution installed into a folder on the path: rebuilt, and listed
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    assert load_manifest() is None
    current_manifest()
    assert load_manifest() is not None
    (site / "another-1.0.dist-info").mkdir()
    assert load_manifest() is None


def test_with_the_manifest_a_plugin_loads_its_own_entry_point_only(tmp_path, monkeypatch):
    """joconde-sparql is registered by the `joconde` entry point: the manifest says so, and
    nothing else is imported to find it."""
    from monalia.api.registry import current_manifest

    monkeypatch.setenv("MONALIA_CACHE_DIR", str(tmp_path))
    current_manifest()
    pm = get_plugin_manager(on_demand=True)
    registry = PluginRegistry(pm)
    assert registry.get("source", "joconde-sparql").origin.package == "monalia"
    assert {name for name, _ in pm.list_name_plugin()} == {"joconde"}
    assert pm.pending  # the others are still declared, not loaded
    assert {p.name for p in registry.all()} == {
        p.name for p in PluginRegistry(get_plugin_manager()).all()
    }


def test_the_first_registry_that_finds_no_manifest_writes_it(tmp_path, monkeypatch):
    """Any command that reads a project writes the manifest when it finds none that holds (not
    only `monalia plugins`): the commands after it read it."""
    from monalia.api.manifest import load_manifest, manifest_file

    monkeypatch.setenv("MONALIA_CACHE_DIR", str(tmp_path))
    assert not manifest_file().exists()
    pm = get_plugin_manager(on_demand=True)
    assert PluginRegistry(pm).get("sink", "turtle").name == "turtle"
    written = load_manifest()
    assert written is not None and pm.manifest == written
    assert {"kind": "sink", "name": "turtle"}.items() <= next(
        p for p in written["plugins"] if p["name"] == "turtle"
    ).items()
    assert written["pydantic_plugins"] == []  # nothing installed here declares one


@pytest.mark.parametrize(
    ("declared", "searched"), [([], False), (["logfire = logfire.integrations.pydantic:x"], True)]
)
def test_pydantic_searches_for_its_plugins_only_where_some_are_declared(declared, searched):
    """pydantic reads every installed distribution's entry points the first time it builds a
    model; the manifest spares it that only when it found no pydantic plugin declared."""
    script = (
        "import json, sys\n"
        "from monalia.api.manifest import skip_pydantic_plugin_scan\n"
        "from pydantic.plugin import _loader\n"
        "skip_pydantic_plugin_scan({'pydantic_plugins': json.loads(sys.argv[1])})\n"
        "print(_loader._plugins is None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(declared)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == str(searched)
