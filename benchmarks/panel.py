"""`python -m benchmarks.panel`: what the playground's text→image panel itself costs around one picture.

The generation is replaced by a free one that reports the real model's steps (25 prior, 50 decoder on
96 × 96 latents) and returns a 768 × 768 picture, so only the panel's own work is timed: progress bars,
live previews, the result grid, the saved PNG and the gallery card. CLICKS clicks one after another in
one playground (its gallery grows by a card each time), seconds from the click to "done" for each.
On a GPU this comes on top of the model's seconds per picture ("Real scale (GPU)"); the app's visitors
see the sum. Writes the "panel" section of benchmarks/results.md.
"""

import statistics
import tempfile
import time

import numpy as np
import PIL.Image
import torch
from diffusers import VQModel

import kandinsky_lab as kl
from benchmarks import sections
from kandinsky_lab.result import Result
from kandinsky_lab.metadata import save_image
from kandinsky_lab.steps import StepEvent
from kandinsky_lab.widgets import Playground

CLICKS = 6
SIDE, LATENT_SIDE, PRIOR_STEPS, STEPS = 768, 96, 25, 50


def free_text_to_image(kit, settings, on_step=None, stop=None, batch_size=None, save_to=None) -> Result:
    """kl.text_to_image's calls to the panel, at the real model's sizes, with no model run."""
    for i in range(PRIOR_STEPS):
        on_step(StepEvent("prior", i + 1, PRIOR_STEPS, 999, torch.zeros(1, 1280), 1, 1))
    latents = torch.randn(1, 4, LATENT_SIDE, LATENT_SIDE, generator=torch.Generator().manual_seed(settings.seed or 0))
    for i in range(STEPS):
        on_step(StepEvent("decoder", i + 1, STEPS, 999, latents, 1, 1))
    s = kl.TextToImage(prompt=settings.prompt, height=SIDE, width=SIDE, seed=settings.seed)
    rng = np.random.default_rng(settings.seed)
    picture = PIL.Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).resize((SIDE, SIDE), PIL.Image.Resampling.BICUBIC)
    result = Result([picture], s, s.prior_seeds(), s.decoder_seeds(), kit.source, 1)
    result.paths = [save_image(result, 0, save_to)]
    return result


def real_sized_kit() -> kl.Kit:
    """The tiny model with a stand-in MoVQ of the real one's four levels (8 pixels a latent), never run: the panel
    reads from it how much a latent preview is enlarged. Previews get colours near mid-grey, as a fitted map gives."""
    kit = kl.load("tiny", device="cpu")
    kit.decoder.movq = VQModel(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(32,) * 4,
        layers_per_block=1, latent_channels=4, num_vq_embeddings=16, vq_embed_dim=4,
    )
    colors = torch.zeros(5, 3)
    colors[:4] = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)) * 0.08
    colors[4] = 0.5
    kit.preview_colors = colors  # fitted once per Kit in real use
    return kit


def click_seconds(clicks: int = CLICKS) -> list[float]:
    kit = real_sized_kit()
    with tempfile.TemporaryDirectory() as tmp:
        panel = Playground(kit, output_dir=tmp).text_to_image
        panel.sampling.seed.lock.value = False  # a new seed each click, as a visitor's
        task, type(panel).task = type(panel).task, staticmethod(free_text_to_image)  # panels call their class's task
        seconds = []
        try:
            for _ in range(clicks):
                start = time.perf_counter()
                panel.run.generate_button.click()
                panel.run.wait(120)
                seconds.append(time.perf_counter() - start)
                if not panel.run.status.value.startswith("done"):
                    raise RuntimeError(f"the panel did not finish: {panel.run.status.value}")
        finally:
            type(panel).task = task
    return seconds


def main() -> None:
    torch.set_num_threads(1)  # the panel's work is single-threaded: PNG encoding, widget messages
    seconds = click_seconds()
    lines = [
        "## The panel's own time around a picture",
        "",
        f"`python -m benchmarks.panel`: the text→image panel around a free {SIDE} × {SIDE} generation ({PRIOR_STEPS} + {STEPS} steps "
        f"reported, previews every 5 decoder steps from {LATENT_SIDE} × {LATENT_SIDE} latents, the result, the saved PNG, the gallery card), "
        f"{CLICKS} clicks in one playground, one CPU thread:",
        "",
        "| click | " + " | ".join(str(i + 1) for i in range(len(seconds))) + " | median |",
        "| --- | " + " | ".join("---" for _ in seconds) + " | --- |",
        "| seconds | " + " | ".join(f"{s:.2f}" for s in seconds) + f" | **{statistics.median(seconds):.2f}** |",
        "",
        "A visitor of the app waits this on top of the model's time. It should not grow with the gallery.",
    ]
    sections.write("panel", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
