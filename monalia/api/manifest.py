"""The plugin manifest: every installed plugin's kind, name, summary, settings schema and the
distribution that registered it, and every entry point with the hooks it implements, kept in a
cache file so that `monalia plugins`, `--help` and the commands that need one plugin (and the
stages' hooks) import no plugin module they do not use.

It is written on first use (by the first command that loads every plugin) and trusted while
its fingerprint holds:

- every folder on ``sys.path`` with the installed distributions' metadata folders in it, each
  with its modification time: installing, upgrading, reinstalling or removing a distribution
  changes that list;
- every file the plugins were read from (their modules, their settings' modules, the entry
  points' modules), with its modification time: an editable install's source changes there.

Anything else (a file that cannot be read, another format, another Python) rebuilds it. The
manifest lives in ``$MONALIA_CACHE_DIR``, else ``$XDG_CACHE_HOME/monalia``, else
``~/.cache/monalia``, one file per Python environment; where none can be written, every
command builds it in memory as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

MANIFEST_FORMAT = 3
CACHE_ENV = "MONALIA_CACHE_DIR"
# the names of installed distributions' metadata in a folder of sys.path
METADATA_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".pth")


def cache_dir() -> Path:
    """Where monalia keeps what it can rebuild: the plugin manifest."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "monalia"


def manifest_file() -> Path:
    """This Python environment's manifest file."""
    key = hashlib.sha256(f"{sys.prefix}\n{sys.executable}\n{sys.version}".encode()).hexdigest()
    return cache_dir() / f"plugins-{key[:16]}.json"


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def installed_fingerprint() -> dict[str, dict[str, int | None]]:
    """Each folder of ``sys.path`` with its distributions' metadata and their modification
    times (a folder with none is kept with an empty entry: one added later shows)."""
    found: dict[str, dict[str, int | None]] = {}
    for entry in sys.path:
        folder = os.path.abspath(entry or os.curdir)
        if folder in found:
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            continue  # a zip file or a folder that is gone
        found[folder] = {
            name: _mtime(os.path.join(folder, name))
            for name in sorted(names)
            if name.endswith(METADATA_SUFFIXES)
        }
    return found


def files_fingerprint(files: list[str]) -> dict[str, int | None]:
    return {path: _mtime(path) for path in files}


def load_manifest() -> dict[str, Any] | None:
    """The manifest, when there is one and it still describes what is installed."""
    try:
        manifest = json.loads(manifest_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None
    files = manifest.get("files") or {}
    if manifest.get("installed") != installed_fingerprint():
        return None
    if files_fingerprint(sorted(files)) != files:
        return None
    return manifest


def _module_file(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    return os.path.abspath(path) if path else None


def _class_files(cls: type) -> set[str]:
    files = set()
    for klass in cls.__mro__:
        if klass.__module__ not in ("builtins", "abc", "typing"):
            path = _module_file(klass.__module__)
            if path:
                files.add(path)
    return files


def _settings_schema(cls: type) -> dict[str, Any] | None:
    settings = getattr(cls, "Settings", None)
    if settings is None or not hasattr(settings, "model_json_schema"):
        return None
    try:
        return settings.model_json_schema()
    except Exception as exc:  # a schema pydantic cannot write must not hide the plugin
        return {"error": f"{type(exc).__name__}: {exc}"}


def build_manifest(registry) -> dict[str, Any]:
    """The manifest of every installed plugin, read from a registry that loads them all."""
    installed = installed_fingerprint()  # before loading: a change meanwhile rebuilds it
    registry.load_all()
    files: set[str] = set()
    plugins = []
    for info in registry.all():
        entry_point = info.origin.entry_point or ""
        name, _, value = entry_point.partition(" = ")
        module = value.split(":")[0].strip()
        if module and _module_file(module):
            files.add(_module_file(module))
        files |= _class_files(info.cls)
        settings = getattr(info.cls, "Settings", None)
        if isinstance(settings, type):
            files |= _class_files(settings)
        plugins.append(
            {
                "kind": info.kind,
                "name": info.name,
                "class": f"{info.cls.__module__}.{info.cls.__qualname__}",
                "summary": info.summary,
                "package": info.origin.package,
                "version": info.origin.version,
                "entry_point": name.strip() or None,
                "entry_point_value": value.strip() or None,
                "settings_schema": _settings_schema(info.cls),
            }
        )
    pm = registry.pm
    entry_points = []
    for name, plugin in pm.list_name_plugin():
        origin = pm.origins.get(id(plugin))
        if origin is None or not origin.entry_point:
            continue  # registered by hand, not by an entry point
        _, _, value = origin.entry_point.partition(" = ")
        module = value.split(":")[0].strip()
        if module and _module_file(module):
            files.add(_module_file(module))
        entry_points.append(
            {
                "name": name,
                "value": value.strip(),
                "package": origin.package,
                "version": origin.version,
                # the hooks it implements: a command loads the entry points that observe its
                # stages (stage_finished, record_harvested, ...), not every one installed
                "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or []),
            }
        )
    broken = [
        {
            "entry_point": item.entry_point,
            "package": item.origin.package,
            "version": item.origin.version,
            "declared": item.origin.entry_point,
            "error": item.error,
        }
        for item in registry.pm.broken
    ]
    return {
        "format": MANIFEST_FORMAT,
        "installed": installed,
        "files": files_fingerprint(sorted(files)),
        "plugins": plugins,
        "entry_points": entry_points,
        "broken": broken,
        "pydantic_plugins": pydantic_plugins(),
    }


def pydantic_plugins() -> list[str]:
    """The entry points of pydantic's own plugin group that installed distributions declare."""
    import importlib.metadata

    return sorted(
        f"{ep.name} = {ep.value}"
        for dist in importlib.metadata.distributions()
        for ep in dist.entry_points
        if ep.group == "pydantic"
    )


def skip_pydantic_plugin_scan(manifest: dict[str, Any] | None) -> None:
    """Spare pydantic its search for plugins when the manifest says no distribution declares
    one: pydantic reads every installed distribution's entry points the first time it builds a
    model (tens of milliseconds of each command), and would find nothing. Where some are
    declared, or pydantic's loader is not the one known here, pydantic searches as usual."""
    if not manifest or manifest.get("pydantic_plugins") != []:
        return
    try:
        from pydantic.plugin import _loader
    except ImportError:
        return
    if getattr(_loader, "_plugins", False) is None and not _loader._loading_plugins:
        _loader._plugins = {}


def save_manifest(manifest: dict[str, Any]) -> bool:
    """Write the manifest in one step (a reader never sees half of it); False where the cache
    folder cannot be written."""
    path = manifest_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        return False
    return True
