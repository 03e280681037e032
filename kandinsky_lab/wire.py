"""Settings, step events and pictures as JSON, between a room's clients (remote.py) and its server (serve/).

Never pickle: a request is plain JSON whose pictures are base64 PNG, read back with strict checks
and the room's `Limits` (bytes, pixels, pictures, steps), each refusal naming what was too much.
The settings then go through the same checks a local call makes (tasks/request.py).

    {"task": "text_to_image", "settings": {"prompt": "a red circle", "steps": 10, …},
     "batch_size": null, "previews": "colors"}
"""

import base64
import binascii
import dataclasses
import io
from dataclasses import dataclass

import PIL.Image

from .errors import SettingsError
from .metadata import TASKS, task_name

PNG = "png"  # a picture's key in JSON: {"png": "<base64>"}


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the room's server (refused by name beyond)."""

    bytes: int = 16 * 2**20  # the request's JSON
    pixels: int = 1024 * 1024  # per input picture, and per picture asked for (height × width)
    images: int = 4  # input pictures in one request
    steps: int = 200  # decoder steps, and prior steps
    num_images: int = 8  # pictures in one request
    adapter_bytes: int = 8 * 2**20  # a LoRA adapter's weight files, all parts together


def picture_to_json(image: PIL.Image.Image) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {PNG: base64.b64encode(buffer.getvalue()).decode("ascii")}


def picture_from_json(value, name: str, limits: Limits | None = None) -> PIL.Image.Image:
    """A {"png": base64} picture, its size checked before its pixels are decoded."""
    if not (isinstance(value, dict) and set(value) == {PNG} and isinstance(value[PNG], str)):
        raise SettingsError(f"{name} must be a picture as {{'png': base64}}, got {str(value)[:40]!r}")
    try:
        data = base64.b64decode(value[PNG], validate=True)
        image = PIL.Image.open(io.BytesIO(data))
    except (binascii.Error, ValueError, OSError, PIL.Image.DecompressionBombError) as error:
        raise SettingsError(f"{name} is not a PNG picture: {error}") from None
    if image.format != "PNG":
        raise SettingsError(f"{name} must be a PNG picture, got {image.format}")
    if limits is not None and image.width * image.height > limits.pixels:
        raise SettingsError(f"{name} has {image.width} × {image.height} pixels, over this room's limit of {limits.pixels:,} pixels")
    try:
        image.load()
    except (OSError, ValueError) as error:
        raise SettingsError(f"{name} is a damaged PNG: {error}") from None
    return image.copy()  # a plain PIL image, as a local kit returns


def settings_to_json(settings) -> dict:
    """{"task": name, "settings": {field: value}}, pictures as base64 PNG."""
    out = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, PIL.Image.Image):
            value = picture_to_json(value)
        elif isinstance(value, tuple):
            value = [picture_to_json(v) if isinstance(v, PIL.Image.Image) else v for v in value]
        out[f.name] = value
    return {"task": task_name(settings), "settings": out}


def settings_from_json(data, limits: Limits):
    """The settings a request describes, or SettingsError naming what is wrong or over the limits."""
    if not isinstance(data, dict) or not isinstance(data.get("task"), str) or not isinstance(data.get("settings"), dict):
        raise SettingsError("a request must be a JSON object with 'task' (a name) and 'settings' (an object)")
    task, values = data["task"], data["settings"]
    if task not in TASKS:
        raise SettingsError(f"unknown task {task[:40]!r}: the server knows {', '.join(TASKS)}")
    cls = TASKS[task]
    known = {f.name for f in dataclasses.fields(cls)}
    pictures, kwargs = 0, {}
    for name, value in values.items():
        if name not in known:
            raise SettingsError(f"unknown setting {name[:40]!r} for {task}")
        if isinstance(value, dict):
            pictures += 1
            value = picture_from_json(value, name, limits)
        elif isinstance(value, list):
            items = []
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    pictures += 1
                    item = picture_from_json(item, f"{name}[{i}]", limits)
                items.append(item)
            value = tuple(items)
        kwargs[name] = value
        if pictures > limits.images:
            raise SettingsError(f"this request holds more than {limits.images} pictures, this room's limit")
    try:
        settings = cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"these {task} settings cannot be read: {error}") from None
    check_limits(settings, limits)
    return settings


def check_limits(settings, limits: Limits) -> None:
    """The room's limits on what a request asks the model for (the settings' own checks come after)."""
    for name, most in (("steps", limits.steps), ("prior_steps", limits.steps), ("num_images", limits.num_images)):
        value = getattr(settings, name)
        if isinstance(value, int) and value > most:
            raise SettingsError(f"{name} {value} is over this room's limit of {most}")
    height, width = settings.height, settings.width
    if isinstance(height, int) and isinstance(width, int) and height * width > limits.pixels:
        raise SettingsError(f"{width} × {height} pictures are over this room's limit of {limits.pixels:,} pixels")


def event_to_json(event) -> dict:
    """A StepEvent without its latents (pictures of them, when asked, as previews)."""
    out = {"type": "step", "stage": event.stage, "step": event.step, "total": event.total, "timestep": event.timestep, "batch": event.batch, "batches": event.batches}
    if event.previews is not None:
        out["previews"] = [picture_to_json(p) for p in event.previews]
    return out


def adapter_to_json(adapter) -> dict:
    """An adapter folder (adapters.Adapter) as JSON: its adapter.json and each part's weights as base64."""
    from .adapters import INFO_FILE, WEIGHTS_FILE

    parts = {part: base64.b64encode((adapter.folder / part / WEIGHTS_FILE).read_bytes()).decode("ascii") for part in adapter.parts}
    return {"digest": adapter.digest, "info": (adapter.folder / INFO_FILE).read_text(), "parts": parts}


def adapter_files(value, folder, limits: Limits) -> None:
    """Write an adapter sent as JSON into `folder` (adapters.read then checks it as it checks a local one)."""
    from .adapters import INFO_FILE, PARTS, WEIGHTS_FILE

    if not (isinstance(value, dict) and isinstance(value.get("info"), str) and isinstance(value.get("parts"), dict)):
        raise SettingsError("an adapter must be {'info': adapter.json's text, 'parts': {part: base64 weights}}")
    if not value["parts"] or any(part not in PARTS or not isinstance(data, str) for part, data in value["parts"].items()):
        raise SettingsError(f"an adapter's parts must be one or both of {PARTS}, each base64 weights")
    if sum(len(data) * 3 // 4 for data in value["parts"].values()) > limits.adapter_bytes:
        raise SettingsError(f"this adapter's weights are over this room's limit of {limits.adapter_bytes:,} bytes")
    (folder / INFO_FILE).write_text(value["info"])
    for part, data in value["parts"].items():
        try:
            weights = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as error:
            raise SettingsError(f"the adapter's {part} weights are not base64: {error}") from None
        (folder / part).mkdir()
        (folder / part / WEIGHTS_FILE).write_bytes(weights)
