"""Batch generation: a file of prompts → N pictures each, resumable, split across processes.

    rows  = read_prompts("prompts.csv")            # txt, CSV or JSONL; per-row settings allowed
    items = plan(rows, images_per_prompt=4, seed=0)
    run(kit, items, "out/")                        # one process; under `accelerate launch`, pass rank/world

Every item is one picture with its own seed, derived from (base seed, row, index) alone, so a picture
does not depend on how the work was split or in which order it ran. Each picture is written
atomically under a fixed name (out/images/RRRRR-III-slug.png, settings inside the PNG), and only
then recorded in this process's manifest part (out/manifest.part-K.jsonl). A re-run skips recorded
items; a crash loses at most the item in flight. `merge` folds the parts into out/manifest.jsonl,
one line per item in (row, index) order.
"""

import csv
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .errors import FileFormatError, SettingsError
from .tasks.text_to_image import text_to_image
from .backend import Backend
from .metadata import save_image_as, settings_to_dict, slug
from .settings import TextToImage, check_text

# a row may set any text→image setting, and "images" (pictures for this row); seeds come from `plan`
ROW_FIELDS = ({f.name for f in dataclasses.fields(TextToImage)} - {"num_images", "decoder_seed"}) | {"images"}
NUMBERS = {"prior_guidance_scale": float, "guidance_scale": float, "prior_steps": int, "steps": int, "height": int, "width": int, "seed": int, "images": int}
MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class Item:
    row: int
    index: int
    settings: TextToImage

    @property
    def file(self) -> str:
        return f"images/{self.row:05d}-{self.index:03d}-{slug(self.settings.prompt, 30)}.png"


def read_prompts(path: str | os.PathLike) -> list[dict]:
    """Rows of {"prompt": …, other settings…} from .txt (a prompt per line, # comments), .csv or .jsonl (UTF-8).

    Each problem is refused naming the file and its line (.txt, .jsonl) or row (.csv); a number that is
    not whole where a whole one is needed (steps 2.7) is refused, never truncated."""
    path = Path(path)
    if path.suffix not in (".txt", ".csv", ".jsonl"):
        raise SettingsError(f"prompts must be a .txt, .csv or .jsonl file, got {path.name}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path} is a folder, not a file of prompts") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise FileFormatError(f"{path.name} line {line} is not UTF-8 text: save the file as UTF-8") from None
    if path.suffix == ".txt":
        rows = [(n, {"prompt": line.strip()}) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.strip().startswith("#")]
    elif path.suffix == ".csv":
        try:
            reader = csv.DictReader(text.splitlines())
            rows = [(n + 1, {k: v for k, v in row.items() if v not in (None, "")}) for n, row in enumerate(reader, 1)]
        except csv.Error as error:
            raise FileFormatError(f"{path.name} is not valid CSV: {error}") from None
        for number, row in rows:
            if None in row:
                raise FileFormatError(f"{path.name} line {number} has more values than the header has columns")
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as error:
                    raise FileFormatError(f"{path.name} line {number} is not JSON: {error}") from None
    for number, row in rows:
        where = f"{path.name} line {number}"
        if not isinstance(row, dict):
            raise FileFormatError(f"{where}: a row must be a JSON object with a 'prompt', got {type(row).__name__}")
        unknown = sorted(set(row) - set(ROW_FIELDS))
        if unknown:
            raise FileFormatError(f"{where}: unknown column(s) {unknown}; allowed: {sorted(ROW_FIELDS)}")
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise FileFormatError(f"{where}: a non-empty prompt is required")
        for key, kind in NUMBERS.items():
            if key in row:
                row[key] = _number(row[key], kind, f"{where}: {key}")
    if not rows:
        raise FileFormatError(f"{path.name} holds no prompts")
    return [row for _, row in rows]


def _number(value, kind: type, name: str):
    """A CSV text or JSON number as `kind`; a whole number only when it is one (2.0 yes, 2.7 and True no)."""
    if isinstance(value, str):
        try:
            value = float(value) if kind is float or not value.strip().lstrip("+-").isdigit() else int(value)
        except ValueError:
            raise FileFormatError(f"{name} must be a {'whole ' if kind is int else ''}number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FileFormatError(f"{name} must be a {'whole ' if kind is int else ''}number, got {value!r}")
    if kind is int:
        if value != int(value):
            raise FileFormatError(f"{name} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def item_seed(seed: int, row: int, index: int) -> int:
    """A seed from (base seed, row, index) alone: the same picture however the work is split."""
    digest = hashlib.sha256(f"{seed}/{row}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan(rows: list[dict], images_per_prompt: int = 1, seed: int = 0, **defaults) -> list[Item]:
    """Every (row, index) item with its full settings: row values over `defaults` over the kit's."""
    if not isinstance(images_per_prompt, int) or isinstance(images_per_prompt, bool) or not 1 <= images_per_prompt <= 10_000:
        raise SettingsError(f"images_per_prompt must be a whole number from 1 to 10000, got {images_per_prompt!r}")
    items = []
    for r, row in enumerate(rows):
        values = defaults | {k: v for k, v in row.items() if k != "images"}
        base = values.pop("seed", seed)
        count = row.get("images", images_per_prompt)
        if not 1 <= count <= 10_000:
            raise SettingsError(f"row {r + 1}: images must be from 1 to 10000, got {count}")
        for i in range(count):
            settings = TextToImage(**values, seed=item_seed(base, r, i))
            if i == 0:
                try:  # every row's settings checked before the model loads, not when its turn comes
                    check_text(settings)
                except SettingsError as error:
                    raise type(error)(f"row {r + 1}: {error}") from None
            items.append(Item(r, i, settings))
    return items


def finished(out: str | os.PathLike) -> dict[tuple[int, int], dict]:
    """Items recorded in any manifest (part or merged) whose picture is on disk."""
    out, done = Path(out), {}
    for path in sorted(out.glob("manifest*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a crash: that item runs again
                continue
            if (out / entry["file"]).is_file():
                done[(entry["row"], entry["index"])] = entry
    return done


def remove_partials(out: str | os.PathLike) -> int:
    """Delete the hidden temporary files a killed run left behind; call before any process writes."""
    stale = list((Path(out) / "images").glob(".partial-*"))
    for path in stale:
        path.unlink()
    return len(stale)


def run(kit: Backend, items: list[Item], out: str | os.PathLike, rank: int = 0, world: int = 1, progress: bool = True) -> int:
    """Generate this process's share of the items (every `world`-th from `rank`); returns how many ran."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    done = finished(out)
    mine = [item for item in items[rank::world] if (item.row, item.index) not in done]
    part = out / f"manifest.part-{rank}.jsonl"
    bar = tqdm(total=len(mine), desc=f"process {rank}" if world > 1 else "batch", position=rank, disable=not progress)
    for item in mine:
        result = text_to_image(kit, item.settings)
        save_image_as(result, 0, out / item.file)
        entry = {"row": item.row, "index": item.index, "file": item.file, "prompt": item.settings.prompt, "seed": item.settings.seed}
        entry["settings"] = settings_to_dict(result.settings)
        with part.open("a") as handle:  # one write per line, after the picture is whole
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        bar.update()
    bar.close()
    return len(mine)


def merge(out: str | os.PathLike, items: list[Item]) -> Path:
    """One manifest.jsonl with every finished item once, in (row, index) order; parts removed."""
    out = Path(out)
    done = finished(out)
    missing = [(item.row, item.index) for item in items if (item.row, item.index) not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} item(s) not finished, first {missing[:3]}: run the batch again to resume")
    manifest = out / MANIFEST
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(done[(item.row, item.index)]) + "\n" for item in items))
    os.replace(tmp, manifest)
    for part in out.glob("manifest.part-*.jsonl"):
        part.unlink()
    return manifest
