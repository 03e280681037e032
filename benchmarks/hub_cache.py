"""Put a model folder into a Hugging Face hub cache, under a repository id, as a download would.

huggingface_hub stores each repository as

    <cache>/models--<owner>--<name>/
        blobs/<sha256>                  the files' contents
        snapshots/<commit>/<path>       relative symlinks into blobs/, one per file of that commit
        refs/main                       the commit that `main` points at

and `from_pretrained(repo_id, local_files_only=True)` (or with the hub out of reach) reads exactly
this. `store` writes that layout from a folder such as `save_pretrained` makes, so the kit's hub
path can be run on weights the project builds: nothing is mocked, only the weight values differ.
"""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from kandinsky_lab import depth, extras, loading

CHUNK = 16 * 2**20


def repo_folder(cache: str | os.PathLike, repo_id: str) -> Path:
    return Path(cache) / ("models--" + repo_id.replace("/", "--"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def store(folder: str | os.PathLike, repo_id: str, cache: str | os.PathLike, move: bool = False) -> Path:
    """Store every file under `folder` as the `main` commit of `repo_id` in `cache`; returns the snapshot folder.

    With `move=True` the files are moved into blobs/ (no second copy of large weights), else copied.
    The commit id is derived from the files' names and contents, so the same files give the same commit.
    """
    folder, root = Path(folder), repo_folder(cache, repo_id)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"{folder} holds no files to store")
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    digests = {p.relative_to(folder).as_posix(): _sha256(p) for p in files}
    commit = hashlib.sha1("\n".join(f"{name} {d}" for name, d in digests.items()).encode()).hexdigest()
    snapshot = root / "snapshots" / commit
    for path in files:
        name = path.relative_to(folder).as_posix()
        blob = root / "blobs" / digests[name]
        if not blob.exists():
            (os.replace if move else shutil.copyfile)(path, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    return snapshot


def store_kit_folder(folder: str | os.PathLike, cache: str | os.PathLike) -> None:
    """File a kit folder (prior/, decoder/ and, where present, decoder-inpaint/, controlnet-depth/, depth/,
    as nano ships them) under the official repository ids, each laid out as its hub repository is: the
    inpainting and ControlNet repositories are whole pipelines (the decoder's files with their own unet/
    and model_index.json class); the depth estimator is Intel/dpt-large's id."""
    folder = Path(folder)
    store(folder / "prior", loading.HUB_PRIOR, cache)
    store(folder / "decoder", loading.HUB_DECODER, cache)
    index = json.loads((folder / "decoder" / "model_index.json").read_text())
    for task, (name, repo, cls) in extras.TASKS.items():
        if not (folder / name / "unet").is_dir():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            repository = Path(tmp) / "repo"
            shutil.copytree(folder / "decoder", repository, ignore=shutil.ignore_patterns("unet"))
            shutil.copytree(folder / name / "unet", repository / "unet")
            (repository / "model_index.json").write_text(json.dumps(index | {"_class_name": cls.__name__}))
            store(repository, repo, cache)
    if (folder / depth.FOLDER / "config.json").is_file():
        store(folder / depth.FOLDER, depth.REAL_ESTIMATOR, cache)
