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

from .generate import text_to_image
from .kit import Kit
from .metadata import save_image_as, settings_to_dict, slug
from .settings import TextToImage

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
    """Rows of {"prompt": …, other settings…} from .txt (a prompt per line, # comments), .csv or .jsonl."""
    path = Path(path)
    if path.suffix == ".txt":
        lines = [line.strip() for line in path.read_text().splitlines()]
        rows = [{"prompt": line} for line in lines if line and not line.startswith("#")]
    elif path.suffix == ".csv":
        with path.open(newline="") as handle:
            rows = [{k: v for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(handle)]
    elif path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path.name} line {number} is not JSON: {error}") from None
    else:
        raise ValueError(f"prompts must be a .txt, .csv or .jsonl file, got {path.name}")
    for number, row in enumerate(rows, 1):
        unknown = sorted(set(row) - set(ROW_FIELDS))
        if unknown:
            raise ValueError(f"{path.name} row {number}: unknown column(s) {unknown}; allowed: {sorted(ROW_FIELDS)}")
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise ValueError(f"{path.name} row {number}: a non-empty prompt is required")
        for key, kind in NUMBERS.items():
            if key in row:
                try:
                    row[key] = kind(row[key])
                except (TypeError, ValueError):
                    raise ValueError(f"{path.name} row {number}: {key} must be a {kind.__name__}, got {row[key]!r}") from None
    if not rows:
        raise ValueError(f"{path.name} holds no prompts")
    return rows


def item_seed(seed: int, row: int, index: int) -> int:
    """A seed from (base seed, row, index) alone: the same picture however the work is split."""
    digest = hashlib.sha256(f"{seed}/{row}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan(rows: list[dict], images_per_prompt: int = 1, seed: int = 0, **defaults) -> list[Item]:
    """Every (row, index) item with its full settings: row values over `defaults` over the kit's."""
    if images_per_prompt < 1:
        raise ValueError(f"images_per_prompt must be at least 1, got {images_per_prompt}")
    items = []
    for r, row in enumerate(rows):
        values = defaults | {k: v for k, v in row.items() if k != "images"}
        base = values.pop("seed", seed)
        for i in range(row.get("images", images_per_prompt)):
            items.append(Item(r, i, TextToImage(**values, seed=item_seed(base, r, i))))
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


def run(kit: Kit, items: list[Item], out: str | os.PathLike, rank: int = 0, world: int = 1, progress: bool = True) -> int:
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
