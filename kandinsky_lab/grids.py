"""Labelled image grids with PIL: rows, columns, their labels and a title, as one picture.

    image_grid([[a, b], [c, d]], row_labels=["seed=0", "seed=1"], col_labels=["cfg=1", "cfg=4"],
               title="guidance x seed")

Labels are drawn with DejaVu Sans where it is found (else characters the font lacks become ASCII:
"→" is "->"), shortened at word boundaries, and rows or columns whose labels are too long show the
words that differ between them. Cells may be None (e.g. a sweep stopped half way): they are left grey. Rows may be shorter than
others (a triangle): the rest of such a row stays blank. Cells of other sizes are
fitted into the first cell's size, keeping their aspect ratio; small cells are enlarged.
"""

import functools
import os

import PIL.Image
from PIL import ImageDraw, ImageFont

from .errors import SettingsError, expect_list, wrong_type

BACKGROUND = "white"
EMPTY = (200, 200, 200)
INK = "black"
PAD = 4  # pixels between cells
MIN_CELL = 128  # pictures with a shorter side are shown enlarged, so a learner can see them


def enlargement(width: int, height: int, min_cell: int = MIN_CELL) -> int:
    """How many times a picture of this size is shown enlarged: its short side to at least `min_cell` pixels."""
    return max(1, -(-min_cell // max(1, min(width, height))))


def enlarged(image: PIL.Image.Image, min_cell: int = MIN_CELL) -> tuple[PIL.Image.Image, int]:
    """`image` enlarged `enlargement` times (nearest neighbour: its pixels stay visible), and that factor."""
    zoom = enlargement(image.width, image.height, min_cell)
    if zoom == 1:
        return image, 1
    return image.resize((image.width * zoom, image.height * zoom), PIL.Image.Resampling.NEAREST), zoom


FONT_FILES = ("DejaVuSans.ttf",)  # has →, ×, …, ≈; Pillow finds it among the system's fonts (and matplotlib ships it)
ASCII = {"→": "->", "←": "<-", "…": "...", "×": "x", "≈": "~", "—": "-", "–": "-", "·": "-", "²": "^2", "≤": "<=", "≥": ">="}


def _font_files():
    yield from FONT_FILES
    try:
        import matplotlib  # optional: its data folder holds DejaVu Sans where the system has no fonts (Colab has both)

        yield from (os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name) for name in FONT_FILES)
    except ImportError:
        pass


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.ImageFont:
    for path in _font_files():
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)  # Pillow's own font: no →, ×, … (drawable() writes -> x ...)
    except TypeError:  # Pillow < 10.1: a fixed-size bitmap font
        return ImageFont.load_default()


@functools.lru_cache(maxsize=4096)
def _has_glyph(font, char: str) -> bool:
    """Whether `font` draws `char` as itself rather than as its "missing" box."""
    if char.isascii():
        return True
    side = 2 * getattr(font, "size", 16)

    def render(c: str) -> bytes:
        image = PIL.Image.new("L", (side, side))
        ImageDraw.Draw(image).text((0, 0), c, font=font, fill=255)
        return image.tobytes()

    return render(char) != render("\U000f0000")  # a private-use code point: no font has it


def drawable(text: str, font) -> str:
    """`text` with every character `font` cannot draw replaced: "→" by "->", … (else "?")."""
    return "".join(c if _has_glyph(font, c) else ASCII.get(c, "?") for c in text)


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _fit(text: str, draw, font, width: int) -> str:
    """`text` shortened at a word boundary, with an ellipsis, until it fits in `width` pixels."""
    text = drawable(text, font)
    if _text_size(draw, text, font)[0] <= width:
        return text
    more = drawable("…", font)
    words = text.split(" ")
    while len(words) > 1 and _text_size(draw, " ".join(words) + more, font)[0] > width:
        words.pop()
    text = " ".join(words)
    while text and _text_size(draw, text + more, font)[0] > width:  # one word longer than the space: cut it
        text = text[:-1]
    return text.rstrip(" ,;:") + more


def _wrap(text: str, draw, font, width: int) -> list[str]:
    """`text` broken into lines at spaces, each at most `width` pixels where a word allows it."""
    lines: list[str] = []
    for word in drawable(text, font).split(" "):
        if lines and _text_size(draw, f"{lines[-1]} {word}", font)[0] <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines or [""]


def differing(labels: list[str]) -> list[str]:
    """The labels without the words they all share at the start and at the end, marked "…".

    ["a red circle on a white background", "a red circle on a black background"] -> ["… white …", "… black …"]
    """
    split = [label.split(" ") for label in labels]
    if len(split) < 2 or len(set(labels)) < len(labels):
        return list(labels)
    shortest = min(len(words) for words in split)
    head = next((i for i in range(shortest) if len({tuple(w[: i + 1]) for w in split}) > 1), shortest)
    tail = next((i for i in range(shortest - head) if len({tuple(w[len(w) - i - 1 :]) for w in split}) > 1), shortest - head)
    if head == 0 and tail == 0:
        return list(labels)
    return [" ".join((["…"] if head else []) + w[head : len(w) - tail] + (["…"] if tail else [])) for w in split]


def title_lines(title: str, draw, font, width: int, fixed: bool = False) -> tuple[ImageFont.ImageFont, list[str]]:
    """The font and lines of a title over a grid `width` pixels wide: a smaller font (down to 12 px, unless the
    size is `fixed`) before a second line, and wrapped, never cut, where even that is too wide."""
    while not fixed and font.size > 12 and _text_size(draw, drawable(title, font), font)[0] > width:
        font = _font(font.size - 1)
    return font, _wrap(title, draw, font, width)


def image_grid(
    cells: list[list[PIL.Image.Image | None]],
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    title: str | None = None,
    font_size: int | None = None,
    min_cell: int = MIN_CELL,
) -> PIL.Image.Image:
    """One RGB picture of `cells[row][col]` with labels left of the rows and above the columns.

    Cells smaller than `min_cell` pixels are enlarged (nearest neighbour, so pixels stay visible), and
    the title says so ("64 × 64 px shown 2× larger").
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
    zoom = enlargement(cell_w, cell_h, min_cell)
    if zoom > 1:
        scale = f"{cell_w} × {cell_h} px shown {zoom}× larger"
        title = f"{title} · {scale}" if title else scale
    cell_w, cell_h = cell_w * zoom, cell_h * zoom
    font = _font(font_size or max(10, min(24, cell_h // 6)))
    probe = ImageDraw.Draw(PIL.Image.new("RGB", (1, 1)))
    row_space = max(cell_w, 160) - PAD * 3
    too_wide = lambda labels, space: bool(labels) and any(_text_size(probe, drawable(t, font), font)[0] > space for t in labels)
    while font_size is None and font.size > 12 and too_wide(col_labels, cell_w):
        font = _font(font.size - 1)  # a smaller font before a column label loses a word (row labels wrap)
    lines = max(1, cell_h // (_text_size(probe, "Ag", font)[1] + PAD))  # a row label may wrap onto this many lines
    if row_labels and any(len(_wrap(t, probe, font, row_space)) > lines for t in row_labels):
        row_labels = differing(row_labels)  # long prompts: show the words that tell the rows apart
    if too_wide(col_labels, cell_w):
        col_labels = differing(col_labels)
    line_h = _text_size(probe, "Ag", font)[1] + PAD * 2
    left = 0
    if row_labels:
        left = max(_text_size(probe, line, font)[0] for t in row_labels for line in _wrap(t, probe, font, row_space)) + PAD * 3
    width = left + cols * (cell_w + PAD) + PAD
    title_font, titled = title_lines(title, probe, font, width - 2 * PAD, fixed=font_size is not None) if title else (font, [])
    title_h = _text_size(probe, "Ag", title_font)[1] + PAD * 2
    top = (line_h if col_labels else 0) + title_h * len(titled)
    height = top + rows * (cell_h + PAD) + PAD
    grid = PIL.Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for i, line in enumerate(titled):
        draw.text((width // 2, PAD + i * title_h), _fit(line, draw, title_font, width - 2 * PAD), fill=INK, font=title_font, anchor="mt")
    for c in range(cols):
        x = left + PAD + c * (cell_w + PAD)
        if col_labels:
            label = _fit(col_labels[c], draw, font, cell_w)
            draw.text((x + cell_w // 2, top - line_h + PAD), label, fill=INK, font=font, anchor="mt")
    for r in range(rows):
        y = top + PAD + r * (cell_h + PAD)
        if row_labels:
            wrapped = _wrap(row_labels[r], draw, font, row_space)
            if len(wrapped) > lines:
                wrapped = wrapped[: lines - 1] + [_fit(" ".join(wrapped[lines - 1 :]), draw, font, row_space)]
            step = _text_size(draw, "Ag", font)[1] + PAD
            for k, line in enumerate(wrapped):
                middle = y + cell_h // 2 + (k - (len(wrapped) - 1) / 2) * step
                draw.text((left - PAD, middle), line, fill=INK, font=font, anchor="rm")
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
