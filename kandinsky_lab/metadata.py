"""PNGs that remember how they were made, and reading them back into settings.

Each saved PNG carries two text chunks:
    parameters      the AUTOMATIC1111 convention (prompt, "Negative prompt: …", "Steps: …, Seed: …"),
                    so image viewers and other tools show the settings
    kandinsky_lab   JSON with everything needed to regenerate the picture bit for bit on the same
                    kind of device: task, settings, image index, batch size, both seed lists, model
                    source and library versions. Input images are recorded by SHA-256, not stored.

    path = save_image(result, 0, "outputs")
    settings, index, batch_size = load_settings(path)   # pass images=[…] for image inputs
    same = regenerate(kit, path)                        # the same pixels

Saving never overwrites: names are numbered, and the file is linked into place only if the name is
still free, after it was written completely (no half-written PNG under the final name).
"""

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import PIL.Image
from PIL.PngImagePlugin import PngInfo

from .errors import FileFormatError, KitError, SettingsError, WrongType, expect_whole
from .result import Result
from .settings import SAMPLER_LABELS, ControlNet, ImageToImage, Inpaint, Interpolation, TextToImage, Variations, check

CHUNK = "kandinsky_lab"
TASKS = {
    "text_to_image": TextToImage,
    "image_to_image": ImageToImage,
    "inpaint": Inpaint,
    "controlnet": ControlNet,
    "variations": Variations,
    "interpolation": Interpolation,
}
# inputs saved beside a picture (00001-….png and 00001-….mask.png): a picture regenerates only with them
BESIDE = {"mask": ".mask.png", "hint": ".hint.png"}
MASK_SUFFIX = BESIDE["mask"]
FORMAT = 1


def image_digest(image: PIL.Image.Image) -> str:
    """SHA-256 of an image's mode, size and pixels: how input images are recognised again."""
    h = hashlib.sha256(f"{image.mode} {image.width}x{image.height} ".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def task_name(settings) -> str:
    for name, cls in TASKS.items():
        if type(settings) is cls:
            return name
    raise WrongType(f"no task for {type(settings).__name__}")


def settings_to_dict(settings) -> dict:
    """Plain JSON values; images become {"sha256": …, "size": [w, h]}."""
    out = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, PIL.Image.Image):
            value = {"sha256": image_digest(value), "size": list(value.size)}
        elif isinstance(value, tuple):
            value = [{"sha256": image_digest(v), "size": list(v.size)} if isinstance(v, PIL.Image.Image) else v for v in value]
        out[f.name] = value
    return out


def settings_from_dict(task: str, values: dict, images=()):
    """Rebuild a settings object; recorded images are looked up by SHA-256 among `images`."""
    by_digest = {image_digest(im): im for im in images}

    def image_for(ref):
        if ref["sha256"] not in by_digest:
            w, h = ref["size"]
            raise SettingsError(f"this picture was made from a {w}x{h} input image that was not passed in images=[…]")
        return by_digest[ref["sha256"]]

    if task not in TASKS:
        raise FileFormatError(f"unknown task {task!r}: the kit records {', '.join(map(repr, TASKS))}")
    if not isinstance(values, dict):
        raise FileFormatError(f"settings must be a JSON object, got {type(values).__name__}")
    cls = TASKS[task]
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in values.items():
        if name not in known:
            raise FileFormatError(f"unknown setting {name!r} for {task}")
        if isinstance(value, dict) and not (isinstance(value.get("sha256"), str) and isinstance(value.get("size"), list) and len(value["size"]) == 2):
            raise FileFormatError(f"setting {name!r} holds an object that is not an image reference")
        if isinstance(value, dict):
            value = image_for(value)
        elif isinstance(value, list):
            value = tuple(image_for(v) if isinstance(v, dict) else v for v in value)
        kwargs[name] = value
    return cls(**kwargs)


def record(result: Result, index: int) -> dict:
    s = result.settings
    return {
        "format": FORMAT,
        "task": task_name(s),
        "settings": settings_to_dict(s),
        "index": index,
        "batch_size": result.batch_size,
        "prior_seed": result.prior_seeds[index],
        "decoder_seed": result.decoder_seeds[index],
        "model": result.model,
        "adapter": result.adapter,  # the LoRA adapter (name, digest, parts, scale) or None: regenerate checks it
        "notes": result.notes,  # what the kit said about the inputs (e.g. words the model never saw)
        "versions": {p: _version(p) for p in ("kandinsky-lab", "diffusers", "transformers", "torch")},
    }


def parameters_text(result: Result, index: int) -> str:
    """The A1111-style `parameters` text."""
    s = result.settings
    if isinstance(s, Interpolation):
        prompt = " + ".join(f"{w:g}*" + (i if isinstance(i, str) else "<image>") for i, w in zip(s.items, s.weights))
    elif isinstance(s, Variations) and not s.prompt.strip():
        prompt = "<variations of an image>"
    else:
        prompt = s.prompt
    fields = {
        "Steps": s.steps,
        "Sampler": SAMPLER_LABELS[s.sampler],
        "CFG scale": s.guidance_scale,
        "Seed": result.decoder_seeds[index],
        "Size": f"{s.width}x{s.height}",
        "Model": result.model,
        "Prior steps": s.prior_steps,
        "Prior CFG scale": s.prior_guidance_scale,
        "Prior seed": result.prior_seeds[index],
    }
    if isinstance(s, ImageToImage):
        fields["Denoising strength"] = s.strength
    if isinstance(s, Interpolation):
        fields["Interpolation"] = s.mode
    if result.adapter:
        fields["Lora"] = f"{result.adapter['name']} ({result.adapter['digest']}) x{result.adapter['scale']:g}"
    lines = [prompt]
    if s.negative_prompt:
        lines.append(f"Negative prompt: {s.negative_prompt}")
    lines.append(", ".join(f"{k}: {v}" for k, v in fields.items()))
    return "\n".join(lines)


def save_image(result: Result, index: int, folder: str | os.PathLike, stem: str | None = None) -> Path:
    """Write image `index` of `result` as a new PNG in `folder`; returns its path. Never overwrites."""
    expect_result(result, index)
    if not isinstance(folder, (str, os.PathLike)) or (stem is not None and not isinstance(stem, str)):
        raise WrongType(f"folder must be a path and stem a text or None, got {type(folder).__name__} and {type(stem).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = slug(stem if stem is not None else _title(result.settings))
    tmp = _write_partial(result, index, folder)
    try:
        number = _next_number(folder)
        while True:
            path = folder / f"{number:05d}-{stem}.png"
            try:
                os.link(tmp.name, path)  # fails if the name is taken: nothing is overwritten
                _save_inputs_beside(result, path)
                return path
            except FileExistsError:
                number += 1
    finally:
        os.unlink(tmp.name)


def expect_result(result, index) -> None:
    """A Result and the index of one of its pictures."""
    if not isinstance(result, Result):
        raise WrongType(f"result must be a Result from a task (e.g. kl.text_to_image), got {type(result).__name__}")
    expect_whole(index, "index", 0, max(0, len(result.images) - 1))
    if not result.images:
        raise SettingsError("result holds no pictures to save (was it stopped before the first one?)")


def save_image_as(result: Result, index: int, path: str | os.PathLike) -> Path:
    """Write image `index` of `result` to exactly `path`, atomically: the file is whole or absent.

    For batch runs, whose file names are fixed by the item; an existing file is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_partial(result, index, path.parent)
    os.replace(tmp.name, path)
    _save_inputs_beside(result, path)
    return path


def beside_path(path: str | os.PathLike, field: str = "mask") -> Path:
    """Where a picture's `field` input (an inpainting mask, a ControlNet hint) is saved: `<name>.mask.png`, `<name>.hint.png`."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".png") + BESIDE[field])


def mask_path(path: str | os.PathLike) -> Path:
    """Where an inpainting picture's mask is saved: beside it, `<name>.mask.png`."""
    return beside_path(path, "mask")


def _save_inputs_beside(result: Result, path: Path) -> None:
    """Save the inputs a picture regenerates only with (mask, hint) next to it; load_settings finds them."""
    for field in BESIDE:
        value = getattr(result.settings, field, None)
        if isinstance(value, PIL.Image.Image):
            value.save(beside_path(path, field), format="PNG")


def _write_partial(result: Result, index: int, folder: Path):
    """The PNG with its metadata, written and flushed to a hidden temporary file in `folder`."""
    info = PngInfo()
    info.add_text("parameters", parameters_text(result, index))
    info.add_text(CHUNK, json.dumps(record(result, index)))
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".partial-", suffix=".png", delete=False) as tmp:
        result.images[index].save(tmp, format="PNG", pnginfo=info)
        tmp.flush()
        os.fsync(tmp.fileno())
    return tmp


# The record's fields that load_settings reads, with what each must be.
RECORD_FIELDS = {"task": str, "settings": dict, "index": int, "batch_size": int}


def read_record(path: str | os.PathLike) -> dict:
    """The kit's JSON record in a PNG, checked field by field: a broken, edited or foreign file is refused
    with an error naming the file and the field."""
    if not isinstance(path, (str, os.PathLike)):
        raise WrongType(f"path must be a file path (text or pathlib.Path), got {type(path).__name__}")
    try:
        with PIL.Image.open(path) as im:
            im.load()
            text = im.text.get(CHUNK) if hasattr(im, "text") else None
    except FileNotFoundError:
        raise FileFormatError(f"{path} does not exist") from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError) as error:
        raise FileFormatError(f"{path} is not a picture PIL can read ({error})") from None
    if text is None:
        raise FileFormatError(f"{path} has no {CHUNK} metadata (was it saved by kandinsky_lab.save_image?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise FileFormatError(f"{path}: its {CHUNK} metadata is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise FileFormatError(f"{path}: its {CHUNK} metadata must be a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise FileFormatError(f"{path}: metadata format {data.get('format')!r} is not supported (expected {FORMAT})")
    for name, kind in RECORD_FIELDS.items():
        if name not in data:
            raise FileFormatError(f"{path}: its metadata has no {name!r}")
        if not isinstance(data[name], kind) or isinstance(data[name], bool):
            raise FileFormatError(f"{path}: {name!r} must be a {kind.__name__}, got {data[name]!r}"[:300])
    return data


def load_settings(path: str | os.PathLike, images=()):
    """(settings, index, batch_size) recorded in a PNG saved by `save_image`, checked as a task checks them.
    An inpainting picture's mask is read from beside it (`mask_path`); its input picture must be in `images`."""
    data = read_record(path)
    for field in BESIDE:
        if beside_path(path, field).is_file():
            with PIL.Image.open(beside_path(path, field)) as saved:
                images = [*images, saved.copy()]
    try:
        settings = settings_from_dict(data["task"], data["settings"], images)
        check(settings)
    except FileFormatError as error:
        raise FileFormatError(f"{path}: {error}") from None
    except SettingsError as error:  # absurd values: say it is the file, not the user, that holds them
        if "input image that was not passed" in str(error):
            raise
        raise FileFormatError(f"{path}: the recorded {error}") from None
    except TypeError as error:  # a field the dataclass does not take in this form
        raise FileFormatError(f"{path}: the recorded settings do not fit {data['task']} ({error})") from None
    index, batch_size = data["index"], data["batch_size"]
    if not 0 <= index < settings.num_images or not 1 <= batch_size <= settings.num_images:
        raise FileFormatError(f"{path}: index {index} and batch_size {batch_size} do not fit num_images={settings.num_images}")
    return settings, index, batch_size


def regenerate(kit, path: str | os.PathLike, images=()) -> PIL.Image.Image:
    """Make the picture in `path` again from its metadata."""
    settings, index, batch_size = load_settings(path, images)
    from .tasks import run  # the tasks import this module to save

    settings = with_recorded_adapter(kit, read_record(path), settings, path)
    result = run(kit, settings, batch_size=batch_size)
    return result.images[index]


def with_recorded_adapter(kit, data: dict, settings, path):
    """The settings to draw with the adapter the picture was made with, which must be the Kit's (by digest); a
    picture made without one draws at adapter_scale 0 (the base model) while an adapter is loaded."""
    made_with, loaded = data.get("adapter"), getattr(kit, "adapter", None)
    if made_with is None:
        return dataclasses.replace(settings, adapter_scale=0.0) if loaded is not None else settings
    if not isinstance(made_with, dict) or not isinstance(made_with.get("digest"), str):
        raise FileFormatError(f"{path}: its 'adapter' must be a JSON object with a 'digest', got {made_with!r}"[:300])
    named = f"{made_with.get('name', '?')!r} ({made_with['digest']})"
    if loaded is None:
        raise KitError(f"{path} was drawn with the LoRA adapter {named}: load it first (kit.load_adapter(folder)), then regenerate")
    if loaded.digest != made_with["digest"]:
        raise KitError(f"{path} was drawn with the LoRA adapter {named}, and the loaded one is {loaded}: load {named} to make it again")
    return dataclasses.replace(settings, adapter_scale=float(made_with.get("scale", settings.adapter_scale or 1.0)))


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe stem: letters, digits and dashes only (no path separators, no dots)."""
    text = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return text[:limit].strip("-") or "image"


def _title(settings) -> str:
    if isinstance(settings, Interpolation):
        return "mix-" + "-".join(i for i in settings.items if isinstance(i, str))
    if isinstance(settings, Variations):
        return "variation" + (f"-{settings.prompt}" if settings.prompt.strip() else "")
    return settings.prompt


def _next_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in folder.glob("*.png") if (m := re.match(r"(\d{5,})-", p.name))]
    return max(numbers, default=0) + 1


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
