"""What every task returns: the pictures and everything needed to make them again (no torch needed)."""

from dataclasses import dataclass, field
from pathlib import Path

import PIL.Image

from .settings import Sampling


@dataclass
class Result:
    """Pictures and everything needed to make them again."""

    images: list[PIL.Image.Image]
    settings: Sampling  # as asked, with height and width (and a guidance left to the model) filled in
    prior_seeds: list[int]  # per image
    decoder_seeds: list[int]  # per image
    model: str  # the Kit's source
    batch_size: int = 1  # images per decoder call (numerics differ slightly between batch sizes)
    embeddings: object | None = None  # embeddings.Embeddings; None if stopped during the prior, or made on a server
    interrupted: str | None = None  # e.g. "stopped during the decoder at step 3"
    notes: list[str] = field(default_factory=list)  # what the kit did to the inputs, in words
    paths: list[Path] = field(default_factory=list)  # where each image was saved (with `save_to`)
    adapter: dict | None = None  # the LoRA adapter it was drawn with: name, digest, parts, scale (adapters.py); None: the base model

    @property
    def size(self) -> tuple[int, int]:
        return self.settings.height, self.settings.width
