"""The plugin manager: finds plugins through the ``monalia`` entry-point group and indexes them.

monalia's built-ins are declared in that group by monalia's own distribution, exactly as a
third-party package declares its plugins, so both are found the same way.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

import pluggy

from monalia.api import hookspecs
from monalia.errors import PluginError

ENTRY_POINT_GROUP = "monalia"

KINDS = {
    "source": "register_sources",
    "labeler": "register_labelers",
    "trainer": "register_trainers",
    "sink": "register_sinks",
    "metadata-format": "register_metadata_formats",
}


@dataclass(frozen=True)
class PluginOrigin:
    """Which distribution a plugin module came from."""

    package: str
    version: str
    entry_point: str | None = None


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin class, with where it came from."""

    kind: str
    name: str
    cls: type
    origin: PluginOrigin

    @property
    def summary(self) -> str:
        return self.cls.summary() if hasattr(self.cls, "summary") else ""


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that failed to load; reported, and an error only when it is used."""

    entry_point: str
    origin: PluginOrigin
    error: str


# the pattern importlib.metadata.EntryPoint reads a value with
ENTRY_POINT_VALUE = re.compile(
    r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?"
)


@dataclass(frozen=True)
class ListedEntryPoint:
    """An entry point as the manifest lists it: loaded as `importlib.metadata.EntryPoint`
    loads one (``module:attribute``), without reading any installed distribution."""

    name: str
    value: str

    def load(self) -> Any:
        match = ENTRY_POINT_VALUE.fullmatch(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name}: {self.value!r} is not module:attribute")
        value = importlib.import_module(match["module"])
        for attribute in filter(None, (match["attr"] or "").split(".")):
            value = getattr(value, attribute)
        return value


class MonaliaPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers each plugin's distribution and entry points that broke."""

    def __init__(self) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.origins: dict[int, PluginOrigin] = {}
        self.broken: list[BrokenPlugin] = []
        self.on_demand = False  # entry points are loaded when a plugin is asked for
        self.use_manifest = False  # entry points read from the plugin manifest when it holds
        self._unloaded: list[tuple[Any, PluginOrigin]] | None = None
        self._manifest: dict[str, Any] | bool | None = False  # False: not read yet

    def register_plugin(
        self, plugin: Any, name: str | None = None, origin: PluginOrigin | None = None
    ):
        """Register a plugin module or object, remembering its origin for `monalia plugins`."""
        registered = self.register(plugin, name=name)
        if origin is not None:
            self.origins[id(plugin)] = origin
        return registered

    @property
    def manifest(self) -> dict[str, Any] | None:
        """The plugin manifest (`monalia.api.manifest`) when it still holds, read once."""
        if self._manifest is False:
            self._manifest = None
            if self.use_manifest:
                from monalia.api.manifest import skip_pydantic_plugin_scan

                # the first command after an install or a change writes it for the next ones
                self._manifest = current_manifest()
                skip_pydantic_plugin_scan(self._manifest)
        return self._manifest  # type: ignore[return-value]

    def entry_point_of(self, kind: str, name: str) -> str | None:
        """The entry point that registers a plugin, by the manifest; None when it does not
        know the plugin."""
        for entry in (self.manifest or {}).get("plugins", []):
            if entry["kind"] == kind and entry["name"] == name:
                return entry.get("entry_point")
        return None

    def _declared(self) -> list[tuple[Any, PluginOrigin]]:
        """Every entry point of the ``monalia`` group not loaded yet, found once (from the
        manifest when it holds: no installed distribution is read)."""
        if self._unloaded is None and self.manifest is not None:
            self._unloaded = []
            seen = set()
            listed = [
                (e["name"], e["value"], e["package"], e["version"])
                for e in self.manifest.get("entry_points", [])
            ] + [
                (
                    b["entry_point"],
                    (b.get("declared") or "").partition(" = ")[2],
                    b["package"],
                    b["version"],
                )
                for b in self.manifest.get("broken", [])
            ]
            for name, value, package, version in listed:
                if not name or not value or name in seen:
                    continue
                seen.add(name)
                entry_point = ListedEntryPoint(name, value)
                origin = PluginOrigin(package, version, f"{name} = {value}")
                self._unloaded.append((entry_point, origin))
        if self._unloaded is None:
            import importlib.metadata

            self._unloaded = []
            for dist in importlib.metadata.distributions():
                found = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
                if not found:
                    continue
                # the metadata file is parsed once per distribution: it holds the whole README
                metadata = dist.metadata
                package, version = metadata["Name"], metadata["Version"]
                for ep in found:
                    origin = PluginOrigin(package, version, f"{ep.name} = {ep.value}")
                    self._unloaded.append((ep, origin))
        return self._unloaded

    def observing_entry_points(self) -> list[str] | None:
        """The entry points not loaded yet that implement a hook other than a registration
        (`stage_started`, `record_harvested`, ...), by the manifest; None without one."""
        if self.manifest is None:
            return None
        registrations = set(KINDS.values())
        pending = {entry_point.name for entry_point, _ in self._declared()}
        return [
            entry["name"]
            for entry in self.manifest.get("entry_points", [])
            if entry["name"] in pending and set(entry.get("hooks", ())) - registrations
        ]

    @property
    def pending(self) -> bool:
        """Whether entry points remain to be loaded when a plugin is asked for."""
        return self.on_demand and bool(self._declared())

    def load_entry_points(self, name: str | None = None) -> int:
        """Load the plugins declared under the ``monalia`` entry-point group (only those of
        entry-point name `name`, if given); return how many."""
        loaded = 0
        remaining = []
        for ep, origin in self._declared():
            if name is not None and ep.name != name:
                remaining.append((ep, origin))
                continue
            if self.get_plugin(ep.name) is not None or self.is_blocked(ep.name):
                continue  # the same distribution seen twice on sys.path
            try:
                plugin = ep.load()
                self.register_plugin(plugin, name=ep.name, origin=origin)
            except Exception as exc:  # a broken third-party plugin must not hide the others
                self.broken.append(BrokenPlugin(ep.name, origin, f"{type(exc).__name__}: {exc}"))
                continue
            loaded += 1
        self._unloaded = remaining
        return loaded

    def origin_of(self, plugin: Any) -> PluginOrigin:
        known = self.origins.get(id(plugin))
        if known is not None:
            return known
        module = getattr(plugin, "__name__", type(plugin).__name__)
        return PluginOrigin(package=module, version="-")


def get_plugin_manager(
    load_entry_points: bool = True, on_demand: bool = False, use_manifest: bool = True
) -> MonaliaPluginManager:
    """Build a plugin manager with every monalia hookspec and, by default, every installed plugin.

    `on_demand`: the installed plugins are loaded as a registry asks for them instead: a command
    that reads a project imports the plugins it names, not every one installed; the manifest
    (`use_manifest`) says which entry point registers each, without reading the installed
    distributions."""
    pm = MonaliaPluginManager()
    pm.add_hookspecs(hookspecs)
    if on_demand:
        pm.on_demand = True
        pm.use_manifest = use_manifest
    elif load_entry_points:
        pm.load_entry_points()
    pm.check_pending()
    return pm


# the class every plugin of a kind derives from, imported when a plugin of the kind is added
BASE_CLASSES = {
    "source": ("monalia.api.source", "Source"),
    "labeler": ("monalia.api.labeler", "Labeler"),
    "trainer": ("monalia.api.trainer", "Trainer"),
    "sink": ("monalia.api.sink", "Sink"),
    "metadata-format": ("monalia.api.metadata_format", "MetadataFormat"),
}


def base_class(kind: str) -> type:
    module, name = BASE_CLASSES[kind]
    return getattr(importlib.import_module(module), name)


class PluginRegistry:
    """Every plugin class by kind and name, built from the registration hooks of a manager."""

    def __init__(self, pm: MonaliaPluginManager):
        self.pm = pm
        self.plugins: dict[tuple[str, str], PluginInfo] = {}
        self._indexed: set[tuple[str, int]] = set()
        self._index()

    def _index(self) -> None:
        """Add the classes of the registration hooks not read yet."""
        for kind, hook_name in KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                key = (hook_name, id(impl.plugin))
                if key in self._indexed:
                    continue
                self._indexed.add(key)
                origin = self.pm.origin_of(impl.plugin)
                for cls in impl.function() or []:
                    self._add(kind, cls, base_class(kind), origin)

    def load_all(self) -> None:
        """Load every installed plugin not loaded yet (a no-op for a registry built eagerly)."""
        if self.pm.pending:
            self.pm.load_entry_points()
            self._index()

    def _ensure(self, kind: str, name: str) -> None:
        # the entry point of the plugin's own name first (a package's usual layout), then all
        if (kind, name) in self.plugins or not self.pm.pending:
            return
        self.pm.load_entry_points(self.pm.entry_point_of(kind, name) or name)
        self._index()
        if (kind, name) not in self.plugins:
            self.load_all()

    @property
    def hook(self):
        """The hooks that observe the stages (`stage_started`, `record_harvested`, ...) with
        every installed plugin that implements one loaded first: by the manifest only those,
        else every plugin. (A plugin of a kind is asked for with `get`, not through these.)"""
        if self.pm.pending:
            observing = self.pm.observing_entry_points()
            if observing is None:
                self.load_all()
            else:
                for name in observing:
                    self.pm.load_entry_points(name)
                self._index()
        return self.pm.hook

    def _add(self, kind: str, cls: Any, base: type, origin: PluginOrigin) -> None:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"package {origin.package} registers {cls!r} as a {kind}, "
                f"but it is not a subclass of monalia.{base.__name__}"
            )
        if not cls.name:
            raise PluginError(f"package {origin.package}: {kind} class {cls.__name__} has no name")
        key = (kind, cls.name)
        if key in self.plugins:
            other = self.plugins[key].origin.package
            raise PluginError(
                f"two {kind} plugins are named {cls.name!r}: one from {other}, one from "
                f"{origin.package}; uninstall one of them"
            )
        self.plugins[key] = PluginInfo(kind=kind, name=cls.name, cls=cls, origin=origin)

    def all(self, kind: str | None = None) -> list[PluginInfo]:
        """Every plugin, optionally of one kind, sorted by kind and name."""
        self.load_all()
        found = [p for p in self.plugins.values() if kind is None or p.kind == kind]
        return sorted(found, key=lambda p: (list(KINDS).index(p.kind), p.name))

    def knows(self, kind: str, name: str) -> bool:
        """Whether a plugin of this kind and name is installed, loading it only when the
        manifest cannot say."""
        if (kind, name) in self.plugins:
            return True
        entry_point = self.pm.entry_point_of(kind, name)
        if entry_point is not None and not self.pm.is_blocked(entry_point):
            return True
        return self.has(kind, name)

    def has(self, kind: str, name: str) -> bool:
        """Whether a plugin of this kind and name is installed and loaded."""
        self._ensure(kind, name)
        return (kind, name) in self.plugins

    def get(self, kind: str, name: str) -> PluginInfo:
        """The plugin of this kind and name; a clear error listing the installed ones if none."""
        self._ensure(kind, name)
        info = self.plugins.get((kind, name))
        if info is not None:
            return info
        for broken in self.pm.broken:
            if broken.entry_point == name:
                raise PluginError(
                    f"{kind} plugin {name!r} from {broken.origin.package} failed to load: "
                    f"{broken.error}"
                )
        names = ", ".join(p.name for p in self.all(kind)) or "none"
        raise PluginError(f"unknown {kind} plugin {name!r} (installed {kind}s: {names})")


_default_registry: PluginRegistry | None = None


def default_registry() -> PluginRegistry:
    """The registry of every installed plugin, built once per process."""
    global _default_registry
    if _default_registry is None:
        _default_registry = PluginRegistry(get_plugin_manager(on_demand=True))
    return _default_registry


def current_manifest() -> dict[str, Any]:
    """The plugin manifest that holds, else one built now (every plugin loaded) and saved."""
    from monalia.api.manifest import build_manifest, load_manifest, save_manifest

    manifest = load_manifest()
    if manifest is None:
        registry = PluginRegistry(get_plugin_manager(on_demand=True, use_manifest=False))
        manifest = build_manifest(registry)
        save_manifest(manifest)
    return manifest
