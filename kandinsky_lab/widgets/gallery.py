"""The history gallery: every finished picture as a card, with "restore settings" and "send to" buttons
(→ i2i: the start image of image→image; → inpaint: the picture to repaint; → control: the picture
whose layout ControlNet keeps; → vary: the picture to make variations of).

Each card keeps the settings of its own picture — one image, with that picture's prior and decoder
seeds — so restoring puts back *exactly* what made it, even when it came from a batch of several.
Pictures saved to an output folder (the panels' `save_to`) carry their settings inside the PNG, so
`load_folder` rebuilds the gallery after a kernel restart; a start image or mixed image is looked
up among the gallery's pictures and the samples, and a card whose input is not at hand says so.
"""

import dataclasses
import html
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as W
import PIL.Image

from ..result import Result
from ..grids import enlarged, enlargement
from ..metadata import load_settings, read_record
from ..samples import samples
from ..settings import ControlNet, ImageToImage, Inpaint, Interpolation, Variations
from .controls import png_bytes

CARD = "150px"
THUMB = 128  # pixels: a card's picture is shown this wide, small pictures enlarged to it
PROMPT_CHARS = 40  # a card's prompt is shortened to this, at a word boundary
LINE = "white-space:nowrap;overflow:hidden;text-overflow:ellipsis"  # one line per fact: a long seed never pushes the buttons


@dataclass
class Entry:
    image: PIL.Image.Image
    settings: object | None  # this picture's own settings (one image, its seeds); None when they cannot be rebuilt
    seed: int  # decoder seed
    path: Path | None = None
    why_not: str | None = None  # why the settings cannot be restored, in words
    thumb: bytes | None = None  # the card's picture as PNG, made on the first draw


def thumbnail(image: PIL.Image.Image) -> PIL.Image.Image:
    """What a card sends the browser: a small picture enlarged (nearest: its pixels stay visible), a large one
    reduced to twice the card's width (sharp on a high-density screen; a 768² picture is not sent whole)."""
    picture, zoom = enlarged(image, THUMB)
    if zoom == 1 and max(image.size) > 2 * THUMB:
        picture = image.copy()
        picture.thumbnail((2 * THUMB, 2 * THUMB), PIL.Image.Resampling.LANCZOS)
    return picture


def one_picture(settings, prior_seed: int, decoder_seed: int):
    """The settings that make exactly one picture of a call: `num_images=1` with that picture's seeds."""
    return dataclasses.replace(settings, num_images=1, seed=prior_seed, decoder_seed=None if decoder_seed == prior_seed else decoder_seed)


def describe(settings) -> tuple[str, str]:
    """(task, what was asked) for a card: e.g. ("text → image", "a red circle on a white background")."""
    if isinstance(settings, Interpolation):
        parts = [item if isinstance(item, str) else "an image" for item in settings.items]
        return "interpolation", " + ".join(parts)
    if isinstance(settings, ImageToImage):
        return "image → image", settings.prompt
    if isinstance(settings, Inpaint):
        return "inpainting", settings.prompt
    if isinstance(settings, ControlNet):
        return "controlnet", settings.prompt
    if isinstance(settings, Variations):
        return "variations", settings.prompt or "of a picture"
    return "text → image", settings.prompt


class HistoryGallery:
    def __init__(self, on_restore: Callable | None = None, on_send: Callable | None = None, targets: dict | None = None):
        self.on_restore = on_restore  # called with a settings object
        # "send to" buttons: label -> (tooltip, function called with a PIL image); on_send is "→ i2i"
        self.targets = ({"→ i2i": ("use as the start image of image→image", on_send)} if on_send else {}) | (targets or {})
        self.entries: list[Entry] = []
        self.grid = W.GridBox(layout=W.Layout(grid_template_columns=f"repeat(auto-fill, {CARD})", grid_gap="8px"))
        self.title = W.HTML("<b>History</b> (newest first)")
        self.box = W.VBox([self.title, self.grid])
        self.box.add_class("kl-gallery")

    @property
    def images(self) -> list[PIL.Image.Image]:
        return [e.image for e in self.entries]

    def add(self, result: Result) -> None:
        for i, image in enumerate(result.images):
            path = result.paths[i] if i < len(result.paths) else None
            settings = one_picture(result.settings, result.prior_seeds[i], result.decoder_seeds[i])
            self.entries.append(Entry(image, settings, result.decoder_seeds[i], path))
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
            settings, why_not = None, None
            try:  # an input image may be an earlier picture of the gallery, or a sample
                settings = load_settings(path, images=[*self.images, *samples().values()])[0]
                settings = one_picture(settings, record["prior_seed"], record["decoder_seed"])
            except ValueError as error:
                why_not = f"cannot restore: {error}".replace("that was not passed in images=[…]", "that is not in the gallery or the samples")
            self.entries.append(Entry(image, settings, record["decoder_seed"], path, why_not))
            found += 1
        self._redraw()
        return found

    def restore(self, n: int) -> None:
        if self.on_restore is not None and self.entries[n].settings is not None:
            self.on_restore(self.entries[n].settings)

    def send(self, n: int, target: str = "→ i2i") -> None:
        if target in self.targets:
            self.targets[target][1](self.entries[n].image)

    def _redraw(self) -> None:
        self.grid.children = [self._card(n) for n in reversed(range(len(self.entries)))]

    def _card(self, n: int) -> W.Widget:
        entry = self.entries[n]
        zoom = enlargement(entry.image.width, entry.image.height, THUMB)
        size = f"{entry.image.width} × {entry.image.height}" + (f", shown {zoom}×" if zoom > 1 else "")
        if entry.thumb is None:  # encoded once: every new picture redraws every card
            entry.thumb = png_bytes(thumbnail(entry.image))
        thumb = W.Image(value=entry.thumb, format="png", width=str(THUMB), layout=W.Layout(object_fit="contain"))
        restore = W.Button(description="restore", layout=W.Layout(width="70px"))
        restore.tooltip = entry.why_not or "put this picture's settings (its own seeds, one image) back in its panel"
        restore.disabled = entry.settings is None
        sends = []
        for target, (tooltip, _) in self.targets.items():
            sends.append(W.Button(description=target, tooltip=tooltip, layout=W.Layout(width="70px")))
            sends[-1].on_click(lambda _, t=target: self.send(n, t))
            sends[-1].add_class("kl-gallery-send")
        restore.on_click(lambda _: self.restore(n))
        lines = [f"#{n + 1} · seed {entry.seed}", size]
        if entry.settings is not None:
            task, asked = describe(entry.settings)
            lines += [task, textwrap.shorten(asked, PROMPT_CHARS, placeholder=" …")]
        label = W.HTML("".join(f"<div style='{LINE}' title='{html.escape(line, quote=True)}'>{html.escape(line)}</div>" for line in lines))
        label.layout = W.Layout(width=CARD)
        label.add_class("kl-gallery-label")
        rows = [W.HBox([restore, *sends[:1]])] + [W.HBox(sends[i : i + 2]) for i in range(1, len(sends), 2)]
        parts = [thumb, label, *rows]
        if entry.why_not:
            note = W.HTML(f"<div style='color:#8a4b00;font-size:11px;line-height:1.2'>{html.escape(entry.why_not)}</div>", layout=W.Layout(width=CARD))
            note.add_class("kl-gallery-why-not")
            parts.append(note)
        card = W.VBox(parts, layout=W.Layout(width=CARD, overflow="hidden"))
        card.add_class("kl-gallery-card")
        return card
