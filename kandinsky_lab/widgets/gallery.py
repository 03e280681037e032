"""The history gallery: every finished picture as a thumbnail, with "restore settings" and "→ image→image".

It keeps the settings each picture came from, so restoring puts back *exactly* what made it (seed
included). Pictures saved to an output folder (the panels' `save_to`) carry their settings inside
the PNG, so `load_folder` rebuilds the gallery after a kernel restart.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as W
import PIL.Image

from ..generate import Result
from ..metadata import load_settings, read_record
from .controls import png_bytes

THUMB = "128"


@dataclass
class Entry:
    image: PIL.Image.Image
    settings: object | None  # None when it cannot be rebuilt (an input image that is not at hand)
    seed: int
    path: Path | None = None


class HistoryGallery:
    def __init__(self, on_restore: Callable | None = None, on_send: Callable | None = None):
        self.on_restore = on_restore  # called with a settings object
        self.on_send = on_send  # called with a PIL image
        self.entries: list[Entry] = []
        self.grid = W.GridBox(layout=W.Layout(grid_template_columns="repeat(auto-fill, 150px)"))
        self.title = W.HTML("<b>History</b> (newest first)")
        self.box = W.VBox([self.title, self.grid])
        self.box.add_class("kl-gallery")

    @property
    def images(self) -> list[PIL.Image.Image]:
        return [e.image for e in self.entries]

    def add(self, result: Result) -> None:
        for i, image in enumerate(result.images):
            path = result.paths[i] if i < len(result.paths) else None
            self.entries.append(Entry(image, result.settings, result.decoder_seeds[i], path))
        self._redraw()

    def load_folder(self, folder: str | os.PathLike) -> int:
        """Add every PNG in `folder` that carries kandinsky_lab metadata (oldest first); returns how many."""
        found = 0
        for path in sorted(Path(folder).glob("*.png")):
            try:
                record = read_record(path)
            except (ValueError, OSError):
                continue  # not one of ours, or unreadable: leave it alone
            with PIL.Image.open(path) as im:
                image = im.convert("RGB")
            try:
                settings = load_settings(path)[0]
            except ValueError:
                settings = None
            self.entries.append(Entry(image, settings, record["decoder_seed"], path))
            found += 1
        self._redraw()
        return found

    def restore(self, n: int) -> None:
        if self.on_restore is not None and self.entries[n].settings is not None:
            self.on_restore(self.entries[n].settings)

    def send(self, n: int) -> None:
        if self.on_send is not None:
            self.on_send(self.entries[n].image)

    def _redraw(self) -> None:
        self.grid.children = [self._card(n) for n in reversed(range(len(self.entries)))]

    def _card(self, n: int) -> W.Widget:
        entry = self.entries[n]
        thumb = W.Image(value=png_bytes(entry.image), format="png", width=THUMB)
        restore = W.Button(description="restore", tooltip="put this picture's settings back in its panel", layout=W.Layout(width="70px"))
        restore.disabled = entry.settings is None
        send = W.Button(description="→ i2i", tooltip="use as the start image of image→image", layout=W.Layout(width="70px"))
        restore.on_click(lambda _: self.restore(n))
        send.on_click(lambda _: self.send(n))
        label = W.HTML(f"#{n + 1} · seed {entry.seed}")
        card = W.VBox([thumb, label, W.HBox([restore, send])])
        card.add_class("kl-gallery-card")
        return card
