"""The history gallery: every finished picture as a thumbnail, with "restore settings" and "→ image→image".

It keeps the Result each picture came from, so restoring puts back *exactly* the settings (seed
included) that made it. With `output_dir`, each picture is also saved there as a PNG with its
metadata the moment it is made (metadata.py).
"""

import os
from collections.abc import Callable

import ipywidgets as W
import PIL.Image

from ..generate import Result
from ..metadata import save_image
from .controls import png_bytes

THUMB = "128"


class HistoryGallery:
    def __init__(self, output_dir: str | os.PathLike | None = None, on_restore: Callable | None = None, on_send: Callable | None = None):
        self.output_dir = output_dir
        self.on_restore = on_restore  # called with a settings object
        self.on_send = on_send  # called with a PIL image
        self.entries: list[tuple[Result, int]] = []
        self.paths: list = []
        self.grid = W.GridBox(layout=W.Layout(grid_template_columns="repeat(auto-fill, 150px)"))
        self.title = W.HTML("<b>History</b> (newest first)")
        self.box = W.VBox([self.title, self.grid])
        self.box.add_class("kl-gallery")

    @property
    def images(self) -> list[PIL.Image.Image]:
        return [result.images[i] for result, i in self.entries]

    def add(self, result: Result) -> None:
        for index in range(len(result.images)):
            self.entries.append((result, index))
            self.paths.append(save_image(result, index, self.output_dir) if self.output_dir is not None else None)
        self.grid.children = [self._card(n) for n in reversed(range(len(self.entries)))]

    def restore(self, n: int) -> None:
        result, _ = self.entries[n]
        if self.on_restore is not None:
            self.on_restore(result.settings)

    def send(self, n: int) -> None:
        if self.on_send is not None:
            self.on_send(self.images[n])

    def _card(self, n: int) -> W.Widget:
        result, index = self.entries[n]
        thumb = W.Image(value=png_bytes(result.images[index]), format="png", width=THUMB)
        restore = W.Button(description="restore", tooltip="put this picture's settings back in its panel", layout=W.Layout(width="70px"))
        send = W.Button(description="→ i2i", tooltip="use as the start image of image→image", layout=W.Layout(width="70px"))
        restore.on_click(lambda _: self.restore(n))
        send.on_click(lambda _: self.send(n))
        label = W.HTML(f"#{n + 1} · seed {result.decoder_seeds[index]}")
        card = W.VBox([thumb, label, W.HBox([restore, send])])
        card.add_class("kl-gallery-card")
        return card
