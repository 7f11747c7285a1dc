"""What every plugin class has in common: a kind, a name, validated settings and a context."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from monalia import masking
from monalia.errors import ConfigError
from monalia.net.url_policy import UrlPolicy


class PluginSettings(BaseModel):
    """Base of a plugin's settings model: unknown keys are errors, paths resolve from the project.

    A field whose name ends in ``_env`` names an environment variable holding a secret; read it
    with `PluginContext.secret`. Secrets themselves never go in the project file.
    """

    # built when first used: listing plugins or reading a project builds only the settings it reads
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


@dataclass
class PluginContext:
    """Where a plugin instance runs: its name in the project file and the project's folders."""

    instance: str
    project_dir: Path = field(default_factory=Path.cwd)
    data_dir: Path = field(default_factory=lambda: Path.cwd() / ".monalia")
    base_iri: str = "urn:monalia:"
    # which URLs from this plugin's data may be fetched (the project's [project] settings)
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)

    def path(self, value: str | os.PathLike[str]) -> Path:
        """A path from the project file, relative to the project file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.project_dir / path

    def secret(self, env_name: str | None, what: str) -> str | None:
        """The value of the environment variable `env_name`; a clear error when it is unset."""
        if not env_name:
            return None
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(f"{self.instance}: {what} is read from ${env_name}, which is not set")
        masking.remember(value)  # masked wherever text leaves the process, whatever it looks like
        return value


class Plugin:
    """Base of the four plugin kinds. Subclasses set `name`, and `Settings` when they have any."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Settings: ClassVar[type[PluginSettings]] = PluginSettings

    def __init__(
        self, settings: PluginSettings | None = None, context: PluginContext | None = None
    ):
        self.settings = settings if settings is not None else self.Settings()
        self.context = context or PluginContext(instance=self.name)

    @classmethod
    def summary(cls) -> str:
        """One line describing the plugin: its `description`, else its docstring's first line."""
        text = cls.description or (cls.__doc__ or "").strip().splitlines()[0:1]
        return text if isinstance(text, str) else (text[0] if text else "")

    def describe_settings(self) -> dict[str, Any]:
        """Settings as recorded on a run (secret values are never in them, only variable names)."""
        return self.settings.model_dump(mode="json")
