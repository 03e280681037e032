"""LoRA adapters on a loaded model: files in diffusers' own LoRA format, loaded, scaled and removed.

An adapter is a folder (finetune.py writes one at every checkpoint):

    adapter.json                                what it is: the model and parts it was made for, rank, steps, words taught
    decoder/pytorch_lora_weights.safetensors    LoRA of the UNet's attention projections (diffusers' save_lora_adapter)
    prior/pytorch_lora_weights.safetensors      LoRA of the PriorTransformer's attention projections

Someone who never installed the kit loads a part with diffusers alone:
`unet.load_lora_adapter("heart/decoder", weight_name="pytorch_lora_weights.safetensors", prefix=None)`. `kit.load_adapter(folder, scale=…)` loads every
part into the Kit's modules (peft, under a name made from the weights' digest); every task then draws with
it at `settings.adapter_scale` (None: the scale given to load_adapter), and a saved picture's metadata names
the adapter by that digest, so it regenerates only with the same adapter. `kit.unload_adapter()` takes the
LoRA layers out again: the modules are the base model's.

A room's server holds several visitors' adapters at once; a request names the one it draws with, and
`active` switches to it (and its scale) around each model call.
"""

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import FileFormatError, KitError, SettingsError, is_real, plain_number, wrong_type
from .settings import MAX_ADAPTER_SCALE as MAX_SCALE

INFO_FILE = "adapter.json"
WEIGHTS_FILE = "pytorch_lora_weights.safetensors"  # diffusers' own name for LoRA weights
PARTS = ("decoder", "prior")
FORMAT = "kandinsky-lab adapter 1"


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter read from its folder (not yet loaded)."""

    folder: Path
    digest: str  # SHA-256 of its weight files, 16 hex digits: what a picture's metadata records
    info: dict = field(repr=False)  # adapter.json
    scale: float = 1.0  # the scale tasks draw with when their settings leave adapter_scale as None
    peft: str | None = None  # its name among the modules' peft adapters, when not made from the digest (fine_tuning.py's)

    @property
    def name(self) -> str:
        return self.info.get("name") or self.folder.name

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.info["parts"])

    @property
    def peft_name(self) -> str:
        """Its name among the modules' peft adapters."""
        return self.peft or f"kl-{self.digest}"

    def record(self, scale: float) -> dict:
        """What a picture's metadata says about it."""
        return {"name": self.name, "digest": self.digest, "parts": list(self.parts), "scale": scale}

    def __str__(self) -> str:
        return f"{self.name} ({'+'.join(self.parts)}, {self.digest})"


def modules(kit) -> dict:
    """The module each part adapts."""
    return {"decoder": kit.decoder.unet, "prior": kit.prior.prior}


def model_digest(module) -> str:
    """The architecture a LoRA fits: a digest of the module's config (its class and every size), 12 hex digits."""
    config = {k: v for k, v in dict(module.config).items() if not k.startswith("_")}
    text = json.dumps([type(module).__name__, config], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def base_record(kit) -> dict:
    """What adapter.json says about the model an adapter was made for."""
    return {"source": kit.source} | {part: model_digest(m) for part, m in modules(kit).items()}


def weights_digest(folder: Path, parts) -> str:
    """SHA-256 of the parts' tensors (names, dtypes, shapes and bytes, in name order), 16 hex digits. Not of the files:
    diffusers writes the peft config into them with its module set in an order that changes from process to process."""
    sha = hashlib.sha256()
    for part in sorted(parts):
        data = (folder / part / WEIGHTS_FILE).read_bytes()
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + length])
        for name in sorted(k for k in header if k != "__metadata__"):
            entry = header[name]
            start, end = entry["data_offsets"]
            sha.update(f"{part}/{name}:{entry['dtype']}:{entry['shape']}".encode())
            sha.update(data[8 + length + start : 8 + length + end])
    return sha.hexdigest()[:16]


def read(folder: str | os.PathLike) -> Adapter:
    """The adapter in `folder`, its files checked (a missing, damaged or foreign file is refused by name)."""
    if not isinstance(folder, (str, os.PathLike)):
        raise wrong_type("folder", "an adapter folder (text or pathlib.Path)", folder)
    folder = Path(folder)
    if folder.is_file() and folder.name == INFO_FILE:
        folder = folder.parent
    info_path = folder / INFO_FILE
    if not folder.is_dir():
        raise FileFormatError(f"{folder} is not a folder: an adapter is the folder kl.finetune wrote (with {INFO_FILE})")
    if not info_path.is_file():
        raise FileFormatError(f"{folder} has no {INFO_FILE}: it is not an adapter written by kl.finetune")
    try:
        info = json.loads(info_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FileFormatError(f"{info_path} is damaged: not JSON ({error})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise FileFormatError(f"{info_path} is not a kandinsky-lab adapter (its format is {info.get('format') if isinstance(info, dict) else info!r})")
    parts = info.get("parts")
    if not isinstance(parts, list) or not parts or any(p not in PARTS for p in parts):
        raise FileFormatError(f"{info_path}: 'parts' must list one or both of {PARTS}, got {parts!r}")
    for part in parts:
        path = folder / part / WEIGHTS_FILE
        if not path.is_file():
            raise FileFormatError(f"{folder}: the {part} part's weights ({part}/{WEIGHTS_FILE}) are missing")
        check_weights(path, part)
    return Adapter(folder, weights_digest(folder, parts), info)


def check_weights(path: Path, part: str) -> None:
    """A readable safetensors file of LoRA weights (lora_A / lora_B pairs), before peft sees it. Reads the file's
    JSON header only (8 bytes of length, then the header), so a thin client checks an adapter without torch."""
    try:
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(8), "little")
            if not 2 <= length <= 100 * 2**20 or length + 8 > path.stat().st_size:
                raise ValueError(f"its header says {length} bytes")
            header = json.loads(f.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise FileFormatError(f"{path} is damaged: not a safetensors file ({error})") from None
    keys = [k for k in header if k != "__metadata__"] if isinstance(header, dict) else []
    if not keys or not all(".lora_A." in k or ".lora_B." in k for k in keys):
        raise FileFormatError(f"{path} holds no LoRA weights in diffusers' peft format (lora_A / lora_B keys): not a {part} adapter of this kit")


def check_fits(kit, adapter: Adapter) -> None:
    """Refuse an adapter made for another model (or another part), by name, before loading it."""
    base = adapter.info.get("base") or {}
    for part in adapter.parts:
        made_for, here = base.get(part), model_digest(modules(kit)[part])
        if made_for != here:
            raise KitError(
                f"the adapter {adapter.name!r} was made for {base.get('source', 'another model')!r}, whose {part} is not this model's "
                f"({kit.source!r}: {part} {here}, the adapter's {made_for}); train one on this model with kl.finetune"
            )


def check_scale(value, name: str = "scale") -> float:
    value = plain_number(value)
    if not is_real(value):
        raise wrong_type(name, "a number (0 = the base model, 1 = the adapter as trained)", value)
    if not -MAX_SCALE <= value <= MAX_SCALE:
        raise SettingsError(f"{name} must be between {-MAX_SCALE:g} and {MAX_SCALE:g}, got {value!r}")
    return float(value)


def load(kit, folder, scale: float = 1.0) -> Adapter:
    """Load the adapter in `folder` into the Kit (replacing the one loaded before); tasks draw with it."""
    scale = check_scale(scale)
    adapter = replace(read(folder), scale=scale)
    check_fits(kit, adapter)
    with kit.lock:
        if kit.adapter is not None and kit.adapter.digest != adapter.digest:
            unload(kit)
        put(kit, adapter)
        kit.adapter = adapter
        switch(kit, adapter, scale)
    return adapter


def put(kit, adapter: Adapter) -> None:
    """Load the adapter's parts into the modules under its peft name, unless they are there already."""
    from .quiet import quiet_loading  # diffusers: not for a thin client, which only reads adapters

    for part in adapter.parts:
        module = modules(kit)[part]
        if adapter.peft_name in getattr(module, "peft_config", {}):
            continue
        try:
            with quiet_loading():
                module.load_lora_adapter(str(adapter.folder / part), adapter_name=adapter.peft_name, prefix=None, weight_name=WEIGHTS_FILE)
        except (ValueError, RuntimeError, KeyError) as error:  # keys or shapes that are not this module's
            remove(kit, adapter)
            raise FileFormatError(f"{adapter.folder / part / WEIGHTS_FILE} does not fit this model's {part}: {str(error)[:300]}") from None


def remove(kit, adapter: Adapter) -> None:
    """Take the adapter's LoRA layers out of the modules; a module left with none is the base model again."""
    for module in modules(kit).values():
        names = getattr(module, "peft_config", {})
        if adapter.peft_name in names:
            if len(names) == 1:
                module.unload_lora()  # the peft wrappers go too: the very modules that were loaded
                module._hf_peft_config_loaded = None  # as diffusers >= 0.35 does; 0.34 leaves it set, and add_adapter then fails
            else:
                module.delete_adapters(adapter.peft_name)


def unload(kit) -> Adapter | None:
    """Remove the loaded adapter (if any); returns it."""
    with kit.lock:
        adapter, kit.adapter = kit.adapter, None
        if adapter is not None:
            remove(kit, adapter)
        kit.prior_tag = None
    return adapter


def tag(adapter: Adapter | None, scale: float | None, part: str) -> tuple | None:
    """What a cached output of `part` depends on: the adapter's digest and scale, or None (the base model)."""
    if adapter is None or not scale or part not in adapter.parts:
        return None
    return (adapter.digest, scale)


def switch(kit, adapter: Adapter | None, scale: float | None) -> None:
    """From now on the modules draw with `adapter` at `scale` (None or 0: the base model)."""
    for part, module in modules(kit).items():
        if not getattr(module, "peft_config", None):
            continue  # no adapter loaded into it: the base model already
        if tag(adapter, scale, part) is None:
            module.disable_adapters()
        else:
            module.enable_adapters()
            activate(module, adapter.peft_name, scale)
    kit.prior_tag = tag(adapter, scale, "prior")  # part of the key of remembered prior outputs (embeddings.py)


def activate(module, name: str, scale: float = 1.0) -> None:
    """Draw with the module's adapter `name` at `scale`: what `set_adapters` ends in. diffusers < 0.38's
    `set_adapters` knows no scale rule for the PriorTransformer (a KeyError); a single number needs none."""
    from diffusers.utils.peft_utils import set_weights_and_activate_adapters

    set_weights_and_activate_adapters(module, [name], [scale])


@contextmanager
def active(kit, adapter: Adapter | None, scale: float | None):
    """Inside the block the modules draw with `adapter` at `scale`; after it, with the Kit's own adapter at its scale
    (what a direct pipeline call, e.g. inside.py's, draws with)."""
    switch(kit, adapter, scale)
    try:
        yield
    finally:
        switch(kit, kit.adapter, kit.adapter.scale if kit.adapter else None)
