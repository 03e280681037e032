"""Labelled image grids with PIL: rows, columns, their labels and a title, as one picture.

    image_grid([[a, b], [c, d]], row_labels=["seed=0", "seed=1"], col_labels=["cfg=1", "cfg=4"],
               title="guidance x seed")

Cells may be None (e.g. a sweep stopped half way): they are left grey. Rows may be shorter than
others (a triangle): the rest of such a row stays blank. Cells of other sizes are
fitted into the first cell's size, keeping their aspect ratio; small cells are enlarged.
"""

import PIL.Image
from PIL import ImageDraw, ImageFont

from .errors import SettingsError, expect_list, wrong_type

BACKGROUND = "white"
EMPTY = (200, 200, 200)
INK = "black"
PAD = 4  # pixels between cells


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed-size bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _fit(text: str, draw, font, width: int) -> str:
    """`text`, shortened with an ellipsis until it fits in `width` pixels."""
    if _text_size(draw, text, font)[0] <= width:
        return text
    while text and _text_size(draw, text + "…", font)[0] > width:
        text = text[:-1]
    return text + "…"


def image_grid(
    cells: list[list[PIL.Image.Image | None]],
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    title: str | None = None,
    font_size: int | None = None,
    min_cell: int = 128,
) -> PIL.Image.Image:
    """One RGB picture of `cells[row][col]` with labels left of the rows and above the columns.

    Cells smaller than `min_cell` pixels are enlarged (nearest neighbour, so pixels stay visible).
    """
    cells = [expect_list(row, f"cells[{r}]") for r, row in enumerate(expect_list(cells, "cells"))]
    for r, row in enumerate(cells):
        for c, im in enumerate(row):
            if im is not None and not isinstance(im, PIL.Image.Image):
                raise wrong_type(f"cells[{r}][{c}]", "a PIL image or None", im)
    row_labels = None if row_labels is None else [str(t) for t in expect_list(row_labels, "row_labels")]
    col_labels = None if col_labels is None else [str(t) for t in expect_list(col_labels, "col_labels")]
    rows, cols = len(cells), max((len(r) for r in cells), default=0)
    if rows == 0 or cols == 0:
        raise SettingsError("image_grid needs at least one cell")
    for name, labels, n in (("row_labels", row_labels, rows), ("col_labels", col_labels, cols)):
        if labels is not None and len(labels) != n:
            raise SettingsError(f"{name} has {len(labels)} labels for {n} {name[:3]}s")
    first = next((im for r in cells for im in r if im is not None), None)
    cell_w, cell_h = first.size if first is not None else (min_cell, min_cell)
    zoom = max(1, -(-min_cell // max(1, min(cell_w, cell_h))))
    cell_w, cell_h = cell_w * zoom, cell_h * zoom
    font_size = font_size or max(10, min(24, cell_h // 6))
    font = _font(font_size)
    probe = ImageDraw.Draw(PIL.Image.new("RGB", (1, 1)))
    line_h = _text_size(probe, "Ag", font)[1] + PAD * 2
    left = 0
    if row_labels:
        left = min(max(_text_size(probe, t, font)[0] for t in row_labels) + PAD * 3, max(cell_w, 160))
    top = (line_h if col_labels else 0) + (line_h if title else 0)
    width = left + cols * (cell_w + PAD) + PAD
    height = top + rows * (cell_h + PAD) + PAD
    grid = PIL.Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    if title:
        draw.text((width // 2, PAD), _fit(title, draw, font, width - 2 * PAD), fill=INK, font=font, anchor="mt")
    for c in range(cols):
        x = left + PAD + c * (cell_w + PAD)
        if col_labels:
            label = _fit(col_labels[c], draw, font, cell_w)
            draw.text((x + cell_w // 2, top - line_h + PAD), label, fill=INK, font=font, anchor="mt")
    for r in range(rows):
        y = top + PAD + r * (cell_h + PAD)
        if row_labels:
            label = _fit(row_labels[r], draw, font, left - 2 * PAD)
            draw.text((left - PAD, y + cell_h // 2), label, fill=INK, font=font, anchor="rm")
        for c in range(cols):
            x = left + PAD + c * (cell_w + PAD)
            if c >= len(cells[r]):
                continue  # a short row (e.g. a triangle): nothing there, not even a placeholder
            im = cells[r][c]
            if im is None:
                draw.rectangle([x, y, x + cell_w - 1, y + cell_h - 1], fill=EMPTY)
                continue
            if im.size != (cell_w, cell_h):
                scale = min(cell_w / im.width, cell_h / im.height)
                size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
                im = im.resize(size, PIL.Image.Resampling.NEAREST if scale >= 1 else PIL.Image.Resampling.LANCZOS)
            grid.paste(im.convert("RGB"), (x + (cell_w - im.width) // 2, y + (cell_h - im.height) // 2))
    return grid


def image_row(images: list[PIL.Image.Image], labels: list[str] | None = None, title: str | None = None) -> PIL.Image.Image:
    """A one-row grid, e.g. the images of one result with their seeds as labels."""
    return image_grid([expect_list(images, "images")], col_labels=labels, title=title)
