"""The official repositories on the Hugging Face hub: which files the kit needs, and fetching only those.

A diffusers repository holds more than a pipeline loads: weights in several formats (safetensors
and pickled .bin, float16 variants, Flax), READMEs, pictures. `plan` picks, from a repository's
file list and its model_index.json, exactly what the kit loads:

    model_index.json, and per component folder: its config / tokenizer files and one set of weights
    (safetensors when the folder has them, else the pickled .bin: the official prior repository's
    image encoder may be stored only as pytorch_model.bin since its July 2023 re-upload).

`download` tells the user the number of files and gigabytes before it starts, then fetches them with
huggingface_hub's progress bars. Pickled weights are allowed for the official repository ids only,
loaded with torch's `weights_only=True` (tensors only, no code runs); user folders stay
safetensors-only (loading.py).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_SUFFIXES = (".json", ".txt")  # configs, tokenizer vocab/merges, special tokens maps
WEIGHT_FORMATS = (".safetensors", ".bin")  # in order of preference


@dataclass
class Plan:
    repo_id: str
    files: list[str]  # repository paths to fetch
    bytes: int  # their total size
    pickled: list[str] = field(default_factory=list)  # components whose only weights are a pickled .bin
    total_bytes: int = 0  # the whole repository, for comparison

    def summary(self) -> str:
        skipped = f" (the repository holds {self.total_bytes / 1e9:.1f} GB; the rest is not used)" if self.total_bytes > self.bytes else ""
        return f"{self.repo_id}: {len(self.files)} files, {self.bytes / 1e9:.2f} GB{skipped}"

    def pickled_note(self) -> str | None:
        if not self.pickled:
            return None
        return (
            f"{self.repo_id}: {', '.join(self.pickled)} has no safetensors weights; its pytorch_model.bin is loaded "
            "with torch's weights_only=True loader, which reads tensors only and runs no code"
        )


def _weights(names: list[str], suffix: str) -> list[str]:
    """Non-variant weight files of one format (a shard index included): model.safetensors, not model.fp16.safetensors."""
    chosen = []
    for name in names:
        stem = name.split("/")[-1]
        if stem.endswith(suffix) and stem.count(".") == 1:
            chosen.append(name)
        elif stem.endswith(suffix + ".index.json") and stem.count(".") == 3:
            chosen.append(name)
    return chosen


def plan(repo_id: str, sizes: dict[str, int], model_index: dict, only: tuple[str, ...] | None = None) -> Plan:
    """The files of `repo_id` (path → bytes) that loading its pipeline (described by `model_index`) reads;
    with `only`, just those components (e.g. ("unet",) from the inpainting repository, whose MoVQ the kit has)."""
    files, pickled = ["model_index.json"], []
    components = [k for k, v in model_index.items() if not k.startswith("_") and isinstance(v, list) and v[0] is not None]
    components = [k for k in components if only is None or k in only]
    for component in components:
        inside = [name for name in sizes if name.startswith(component + "/") and name.count("/") == 1]
        if not inside:  # e.g. a download stopped before this folder arrived
            raise FileNotFoundError(f"{repo_id} has no files for {component}")
        weights = {suffix: _weights(inside, suffix) for suffix in WEIGHT_FORMATS}
        chosen = weights[".safetensors"] or weights[".bin"]
        if weights[".bin"] and not weights[".safetensors"]:
            pickled.append(component)
        indexes = {name for ws in weights.values() for name in ws if name.endswith(".index.json")}
        configs = [name for name in inside if name.endswith(CONFIG_SUFFIXES) and name not in indexes]
        if f"{component}/config.json" in inside and not chosen:
            raise FileNotFoundError(f"{repo_id} has no weights for {component} (looked for {' or '.join(WEIGHT_FORMATS)} files)")
        files += sorted(configs) + sorted(chosen)
    missing = [name for name in files if name not in sizes]
    if missing:
        raise FileNotFoundError(f"{repo_id} lacks {', '.join(missing)}")
    return Plan(repo_id, files, sum(sizes[n] for n in files), pickled, sum(sizes.values()))


def cached_plan(repo_id: str, only: tuple[str, ...] | None = None) -> Plan | None:
    """The plan for the copy of `repo_id` in the local hub cache, or None when it is not (completely) there."""
    from huggingface_hub import try_to_load_from_cache

    index = try_to_load_from_cache(repo_id, "model_index.json")
    if not isinstance(index, str):
        return None
    snapshot = Path(index).parent
    sizes = {p.relative_to(snapshot).as_posix(): p.stat().st_size for p in snapshot.rglob("*") if p.is_file()}
    try:
        return plan(repo_id, sizes, json.loads(Path(index).read_text()), only)
    except (FileNotFoundError, ValueError):
        return None  # an interrupted download: fetch what is missing


def remote_plan(repo_id: str, only: tuple[str, ...] | None = None) -> Plan:
    """The plan from the hub's file list (sizes included) and the repository's model_index.json."""
    from huggingface_hub import HfApi, hf_hub_download

    info = HfApi().model_info(repo_id, files_metadata=True)
    sizes = {s.rfilename: s.size or 0 for s in info.siblings}
    index = json.loads(Path(hf_hub_download(repo_id, "model_index.json")).read_text())
    return plan(repo_id, sizes, index, only)


def download(repo_id: str, log=print, only: tuple[str, ...] | None = None) -> Plan:
    """Fetch what the kit loads from `repo_id` into the hub cache, saying how much before it starts."""
    from huggingface_hub import snapshot_download

    fetch = remote_plan(repo_id, only)
    log(f"Downloading {fetch.summary()}")
    snapshot_download(repo_id, allow_patterns=fetch.files)
    return fetch
