"""`load(source)`: from a model source to a ready `Kit`, through diffusers' `from_pretrained`.

Sources:
    "kandinsky-2-2"   the real model from the Hugging Face hub: kandinsky-community/kandinsky-2-2-prior
                      and kandinsky-community/kandinsky-2-2-decoder (either id works as the source too)
    a folder          holding prior/ and decoder/ as `save_pretrained` writes them (e.g. `Kit.save`)
    "nano"            a miniature Kandinsky 2.2 trained by this project on a world of simple shapes
                      (kandinsky_lab/models/nano, made by `python -m training.train`): the offline default
    "tiny"            a random-weight miniature built in-process (see tiny.py), for offline plumbing

Hub ids, folders and "nano" take the same path: `from_pretrained` with no remote code, from the hub
cache for the real model. The official repositories are fetched by hub.py: only the files the kit
loads, with their size said before the download starts. Folders and "nano" load safetensors only;
the official repository ids may also load a pickled .bin where a component has no safetensors, with
torch's `weights_only=True` loader (tensors only, no code) and a one-line note. When the hub is out
of reach and the model is not cached, `load` fails within seconds and names the offline sources
instead of hanging on a download.

Loading from local files is quiet (quiet.py): no "Loading …" bars or library warnings, since nothing
there takes long. A hub download (hub.py) keeps its progress bar.
"""

import json
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import diffusers
import torch
from packaging.version import Version

from . import devices, hub
from .errors import FileFormatError, SourceError, is_real, wrong_type
from .kit import GUIDED_TASKS, INFO_FILE, Kit
from .quiet import quiet_loading
from .settings import NUMBER_RANGES
from .tiny import build_tiny

with quiet_loading():  # the pipelines' first import loads transformers' CLIP processor, which warns about torchvision
    from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

HUB_MODEL = "kandinsky-2-2"
HUB_PRIOR = "kandinsky-community/kandinsky-2-2-prior"
HUB_DECODER = "kandinsky-community/kandinsky-2-2-decoder"
HUB_SOURCES = (HUB_MODEL, HUB_PRIOR, HUB_DECODER)
HUB_SIZE = 768  # the size the model card renders at
NANO = "nano"
NANO_FOLDER = Path(__file__).parent / "models" / "nano"
OFFLINE_SOURCES = (NANO, "tiny")
TINY_SIZE = 64
FOLDER_SIZE = 512  # diffusers' pipeline default, for folders saved without kandinsky_lab.json
HUB_TIMEOUT_S = 5.0
# diffusers 0.42 renamed from_pretrained's `torch_dtype` to `dtype` (the old name warns).
DTYPE_ARG = "dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype"


def default_source() -> str:
    """KANDINSKY_LAB_SOURCE if set; else the real model on a CUDA GPU that can get it (cached, or the hub
    answers), and "nano" everywhere else."""
    if os.environ.get("KANDINSKY_LAB_SOURCE"):
        return os.environ["KANDINSKY_LAB_SOURCE"]
    return HUB_MODEL if torch.cuda.is_available() and _hub_available() else NANO


def load(
    source: str | os.PathLike | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    offload: str | None = None,
) -> Kit:
    """Load a model source onto a device. See the module docstring for sources, devices.py for the presets."""
    if source is not None and not isinstance(source, (str, os.PathLike)):
        raise wrong_type("source", f"a text ({HUB_MODEL!r}, a folder, {' or '.join(map(repr, OFFLINE_SOURCES))}) or None", source)
    source = default_source() if source is None else os.fspath(source)
    if not source.strip():
        raise SourceError(f"source is empty: use {HUB_MODEL!r}, a folder with prior/ and decoder/, or {' or '.join(map(repr, OFFLINE_SOURCES))} (None picks one)")
    device, dtype, offload = devices.resolve(device, dtype, offload)
    known = {}
    if source == "tiny":
        with quiet_loading():
            prior, decoder = build_tiny()
        if dtype != torch.float32:
            prior.to(dtype=dtype)
            decoder.to(dtype=dtype)
        size = TINY_SIZE
    elif source in HUB_SOURCES:
        options = _hub_ready(HUB_PRIOR, HUB_DECODER)
        prior, decoder = _from_pretrained(HUB_PRIOR, HUB_DECODER, dtype, **options)
        size = HUB_SIZE
    elif source == NANO or Path(source).is_dir():
        if source == NANO and not (NANO_FOLDER / "prior").is_dir():
            raise SourceError(
                f"the nano weights are missing from this installation ({NANO_FOLDER}): reinstall kandinsky-lab, "
                "or train them with `python -m training.train --out kandinsky_lab/models/nano`"
            )
        folder = _check_folder(NANO_FOLDER if source == NANO else Path(source))
        prior, decoder = _from_pretrained(folder / "prior", folder / "decoder", dtype)
        info = read_info(folder / INFO_FILE)
        size = info.get("default_size", FOLDER_SIZE)
        if "vocabulary" in info:  # what it was trained on, for knowledge.py's notes
            known = dict(vocabulary=frozenset(info["vocabulary"]), trained_size=info.get("trained_size", size))
        if "guidance_scale" in info:  # chosen for the model (nano's ControlNet: training/guidance.py)
            known["guidance"] = {task: float(g) for task, g in info["guidance_scale"].items()}
    else:
        raise SourceError(
            f"unknown model source {source!r}: use {HUB_MODEL!r} (the hub), a folder with prior/ and decoder/, "
            f"or an offline model: {', '.join(map(repr, OFFLINE_SOURCES))}"
        )
    devices.place([prior, decoder], device, offload)
    return Kit(prior=prior, decoder=decoder, source=source, default_size=size, device=device, dtype=dtype, offload=offload, **known)


def _from_pretrained(prior_ref, decoder_ref, dtype: torch.dtype, **options):
    """The one loading path for hub ids and folders: safetensors only, never remote code."""
    options = {DTYPE_ARG: dtype, "use_safetensors": True, **options}  # hub ids may pass use_safetensors=None
    try:
        with quiet_loading():  # local files only by now: a hub download happened before (hub.py), with its bar
            prior = KandinskyV22PriorPipeline.from_pretrained(prior_ref, **options)
            decoder = KandinskyV22Pipeline.from_pretrained(decoder_ref, **options)
    except SourceError:
        raise
    except Exception as error:  # missing or corrupt files, pickled weights only, …: say which source
        raise SourceError(f"could not load the model from {prior_ref} and {decoder_ref}: {error}") from error
    prior.set_progress_bar_config(disable=True)
    decoder.set_progress_bar_config(disable=True)
    return prior, decoder


def read_info(path: Path) -> dict:
    """A model folder's kandinsky_lab.json ({} if there is none), each known field checked: a broken or
    hand-edited file is refused naming the file and the field, never half-used."""
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FileFormatError(f"{path} is not valid JSON ({error}); delete it or write it again with Kit.save") from None
    if not isinstance(info, dict):
        raise FileFormatError(f"{path} must hold a JSON object, got {type(info).__name__}")
    for name in ("default_size", "trained_size"):
        if name in info and (not isinstance(info[name], int) or isinstance(info[name], bool) or not 1 <= info[name] <= 4096):
            raise FileFormatError(f"{path}: {name} must be a whole number of pixels from 1 to 4096, got {info[name]!r}")
    guidance, (low, high) = info.get("guidance_scale", {}), NUMBER_RANGES["guidance_scale"]
    if not isinstance(guidance, dict) or not all(task in GUIDED_TASKS and is_real(g) and low <= g <= high for task, g in guidance.items()):
        raise FileFormatError(f"{path}: guidance_scale must map tasks ({', '.join(GUIDED_TASKS)}) to numbers from {low:g} to {high:g}, got {str(guidance)[:60]}")
    if "vocabulary" in info and (not isinstance(info["vocabulary"], list) or not all(isinstance(w, str) for w in info["vocabulary"])):
        raise FileFormatError(f"{path}: vocabulary must be a list of words, got {str(info['vocabulary'])[:60]}")
    return info


def _check_folder(folder: Path) -> Path:
    missing = [f"{part}/model_index.json" for part in ("prior", "decoder") if not (folder / part / "model_index.json").is_file()]
    if missing:
        raise SourceError(f"{folder} is not a Kandinsky 2.2 model folder: missing {', '.join(missing)}")
    return folder


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _hub_available() -> bool:
    cached = all(hub.cached_plan(repo) for repo in (HUB_PRIOR, HUB_DECODER))
    return cached or (not _offline() and _reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"), HUB_TIMEOUT_S))


def _hub_ready(*repos: str, only: tuple[str, ...] | None = None) -> dict:
    """Options for loading official repositories from the hub cache, downloading first what is missing
    (with `only`, just those component folders: the inpainting repository's unet/).

    A cached copy that holds every file the kit loads is used as it is (`local_files_only`, no network),
    as a returning Colab user's is. Otherwise only those files are fetched (hub.py), size said first.
    """
    plans = [hub.cached_plan(repo, only) for repo in repos]
    if not all(plans):
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        if _offline() or not _reachable(endpoint, HUB_TIMEOUT_S):
            why = "HF_HUB_OFFLINE is set" if _offline() else f"{endpoint} cannot be reached"
            raise SourceError(
                f"cannot load {HUB_MODEL!r}: {why} and {' / '.join(repos)} {'is' if len(repos) == 1 else 'are'} not in the local cache. "
                f"Offline sources: {', '.join(map(repr, OFFLINE_SOURCES))}, or a folder with prior/ and decoder/ "
                "written by save_pretrained."
            )
        plans = [found or hub.download(repo, only=only) for found, repo in zip(plans, repos)]
    for note in filter(None, (p.pickled_note() for p in plans)):
        print(note)
    # None: safetensors where a component has them, else its .bin through transformers'/diffusers' weights_only loader
    return {"local_files_only": True, "use_safetensors": None if any(p.pickled for p in plans) else True}


def _reachable(url: str, timeout: float) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout` (DNS included)."""
    parts = urlparse(url)
    address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    outcome = []

    def attempt():
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(outcome and outcome[0])
