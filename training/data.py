"""The training set: shapes-world scenes rendered once into tensors, with a held-out set of combinations.

A fixed tenth of the (shape, color, background) combinations never appears in training, so the
benchmark can ask for pictures the model has never seen (benchmarks/nano.py uses HELD_OUT).
"""

import itertools
import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch

from kandinsky_lab import world

CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def _combinations() -> list[tuple[str, str, str]]:
    return [(s, c, b) for s, c, b in itertools.product(world.SHAPES, world.COLORS, world.COLORS) if c != b]


HELD_OUT = frozenset(random.Random(2022).sample(_combinations(), k=len(_combinations()) // 10))
TRAINING = [combo for combo in _combinations() if combo not in HELD_OUT]


@dataclass
class Dataset:
    scenes: list[world.Scene]
    pixels: torch.Tensor  # (N, 3, 64, 64) uint8
    _groups: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.scenes)

    def movq_batch(self, index: torch.Tensor) -> torch.Tensor:
        """Pixels in [-1, 1], as the MoVQ (and the pipelines' image→image) sees them."""
        return self.pixels[index].float() / 127.5 - 1

    def clip_batch(self, index: torch.Tensor) -> torch.Tensor:
        """Pixels normalised as CLIPImageProcessor does for a 64×64 picture (no resize needed)."""
        return (self.pixels[index].float() / 255 - CLIP_MEAN) / CLIP_STD

    def captions(self, index: torch.Tensor, rng: random.Random) -> list[str]:
        return [world.caption(self.scenes[i], rng) for i in index.tolist()]

    def groups(self, keys: tuple[str, ...]) -> list[torch.Tensor]:
        """Picture indices grouped by the scene attributes `keys` (e.g. ("color", "background"))."""
        if keys not in self._groups:
            found = defaultdict(list)
            for i, scene in enumerate(self.scenes):
                found[tuple(getattr(scene, key) for key in keys)].append(i)
            self._groups[keys] = [torch.tensor(found[value]) for value in sorted(found)]
        return self._groups[keys]

    def look_alike_batch(self, runs: int, run: int, keys: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
        """`runs` × `run` indices: runs of pictures that agree on `keys` (and so differ, if at all, in
        the other attributes) — contrastive training's hard negatives."""
        groups = self.groups(keys)
        chosen = torch.randperm(len(groups), generator=generator)[:runs].tolist()
        return torch.cat([groups[g][torch.randint(len(groups[g]), (run,), generator=generator)] for g in chosen])


def build(count: int, seed: int) -> Dataset:
    """`count` random scenes from the training combinations, rendered."""
    rng = random.Random(seed)
    scenes, pixels = [], np.empty((count, world.SIDE, world.SIDE, 3), dtype=np.uint8)
    for i in range(count):
        shape, color, background = rng.choice(TRAINING)
        scenes.append(world.sample(rng, shape=shape, color=color, background=background))
        pixels[i] = np.asarray(world.render(scenes[i]))
    return Dataset(scenes, torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous())


def matches(captions: list[str], scenes: list[world.Scene]) -> torch.Tensor:
    """(captions × scenes) 1 where the caption fits the scene: every attribute it names agrees."""
    wanted = [world.parse(text) for text in captions]
    return torch.tensor(
        [[float(all(getattr(scene, k) == v for k, v in attrs.items())) for scene in scenes] for attrs in wanted]
    )
