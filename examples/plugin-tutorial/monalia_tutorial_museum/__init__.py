"""The Tutorial Museum's objects, read from its JSON export, as a monalia source."""

from __future__ import annotations

import json
from collections.abc import Iterator

from monalia import ImageRef, RawItem, Record, RecordError, Source, SourceState, Subject, hookimpl
from monalia.api.plugin import PluginSettings
from monalia.formats.mapping import years_of


class TutorialMuseumSettings(PluginSettings):
    """The keys of a `[sources.NAME]` table with ``plugin = "tutorial-museum"``."""

    path: str  # the museum's JSON export: a list of objects
    language: str = "en"  # the language of its keywords


class TutorialMuseumSource(Source):
    """Objects of the Tutorial Museum, from its JSON export."""

    name = "tutorial-museum"  # what `plugin = ...` names in monalia.toml
    Settings = TutorialMuseumSettings

    def items(self, state: SourceState) -> Iterator[RawItem]:
        with self.context.path(self.settings.path).open(encoding="utf-8") as handle:
            objects = json.load(handle)
        # resume after the last object stored: each item says where to go on from
        start = state.checkpoint or 0
        for number, obj in enumerate(objects[start:], start=start):
            yield RawItem(
                key=str(obj.get("inventory", f"#{number}")), payload=obj, checkpoint=number + 1
            )

    def parse(self, item: RawItem) -> Record:
        obj = item.payload
        if not isinstance(obj, dict) or not obj.get("inventory"):
            # reported with the item's key, counted as failed, and the harvest goes on
            raise RecordError("an object without an inventory number")
        start, end = years_of(obj.get("date"))
        return Record(
            source_id=str(obj["inventory"]),
            title=obj.get("title"),
            creators=[obj["artist"]] if obj.get("artist") else [],
            date=obj.get("date"),
            date_start=start,
            date_end=end,
            images=[ImageRef(url=obj["image"])] if obj.get("image") else [],
            subjects=[
                Subject(label=k, lang=self.settings.language) for k in obj.get("keywords", [])
            ],
            raw=obj,
        )


@hookimpl
def register_sources():
    return [TutorialMuseumSource]
