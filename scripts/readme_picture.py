"""The README's picture: what the kit does, made by the kit itself on the offline nano model.

    python scripts/readme_picture.py              # writes docs/readme.png
    python scripts/readme_picture.py --out x.png

One grid, one row per task: text→image for four prompts, image→image from a sample picture (a
star, asked for "a red circle") at three strengths, and a mix of that picture with "a green square"
at three weights. Everything runs on the CPU
in a few seconds; the picture is regenerated whenever nano or the tasks change.
"""

import argparse
from pathlib import Path

import torch

import kandinsky_lab as kl

ROOT = Path(__file__).resolve().parents[1]
STEPS = dict(prior_steps=25, steps=25)
PROMPTS = [
    "a red circle on a white background",
    "a large yellow star on a blue background",
    "a small green triangle on the left on a black background",
    "a blue square on a yellow background",
]


def rows(kit: kl.Kit) -> tuple[list[list], list[str]]:
    text = [kl.text_to_image(kit, kl.TextToImage(prompt=p, seed=1, **STEPS)).images[0] for p in PROMPTS]
    start = kl.sample("rough star")
    image = [start] + [
        kl.image_to_image(kit, kl.ImageToImage(prompt="a red circle on a white background", image=start, strength=s, seed=1, **STEPS)).images[0]
        for s in (0.1, 0.2, 0.3)
    ]
    mix = [start] + [
        kl.interpolate(kit, kl.Interpolation(items=("a green square on a white background", start), weights=(w, 1 - w), seed=1, **STEPS)).images[0]
        for w in (0.2, 0.5, 0.8)
    ]
    labels = ["text → image", "image → image", "mix"]  # the README caption says which strengths and weights
    return [text, image, mix], labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "readme.png")
    args = parser.parse_args()
    torch.set_num_threads(2)
    kit = kl.load("nano", device="cpu")
    cells, labels = rows(kit)
    grid = kl.image_grid(cells, row_labels=labels, title="kandinsky-lab on nano, offline", min_cell=128)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out, optimize=True)
    print(f"{args.out} ({grid.width} × {grid.height}, {args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
