"""One memory measurement in a fresh process: `python -m benchmarks.memory {kit|card} FOLDER`.

Loads the model in FOLDER the way the kit does (once) or the way the model card does (three
separate loads: text→image, image→image, prior + decoder for interpolation), runs all three tasks,
and prints JSON: peak RSS minus the RSS after imports, so the interpreter does not dilute the ratio.
"""

import json
import resource
import sys

import psutil
import PIL.Image
import torch
from diffusers import (
    KandinskyV22CombinedPipeline,
    KandinskyV22Img2ImgCombinedPipeline,
    KandinskyV22Pipeline,
    KandinskyV22PriorPipeline,
)

import kandinsky_lab as kl

PROMPT, STEPS, SIZE = "a red circle", 4, 64


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def kit_way(folder: str) -> None:
    kit = kl.load(folder, device="cpu")
    common = dict(prior_steps=STEPS, steps=STEPS, height=SIZE, width=SIZE)
    image = kl.text_to_image(kit, kl.TextToImage(prompt=PROMPT, **common)).images[0]
    kl.image_to_image(kit, kl.ImageToImage(prompt=PROMPT, image=image, strength=0.5, **common))
    kl.interpolate(kit, kl.Interpolation(items=("a cat", image), weights=(0.5, 0.5), **common))


def load_pair(folder: str):
    prior = KandinskyV22PriorPipeline.from_pretrained(f"{folder}/prior", use_safetensors=True)
    decoder = KandinskyV22Pipeline.from_pretrained(f"{folder}/decoder", use_safetensors=True)
    return prior, decoder


def combined(cls, folder: str):
    """What AutoPipelineForText2Image / Image2Image.from_pretrained(decoder repo) builds: prior + decoder, loaded anew."""
    prior, decoder = load_pair(folder)
    return cls(**decoder.components, **{f"prior_{k}": v for k, v in prior.components.items()})


def card_way(folder: str) -> None:
    t2i = combined(KandinskyV22CombinedPipeline, folder)  # snippet 1
    image = t2i(PROMPT, num_inference_steps=STEPS, prior_num_inference_steps=STEPS, height=SIZE, width=SIZE).images[0]
    i2i = combined(KandinskyV22Img2ImgCombinedPipeline, folder)  # snippet 2
    i2i(PROMPT, image=image, strength=0.5, num_inference_steps=STEPS, prior_num_inference_steps=STEPS, height=SIZE, width=SIZE)
    prior, decoder = load_pair(folder)  # snippet 3
    out = prior.interpolate(["a cat", image], [0.5, 0.5], num_inference_steps=STEPS)
    decoder(**out, height=SIZE, width=SIZE, num_inference_steps=STEPS)


if __name__ == "__main__":
    way, folder = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    base = psutil.Process().memory_info().rss
    {"kit": kit_way, "card": card_way}[way](folder)
    print(json.dumps({"way": way, "base_rss": base, "peak_rss": peak_rss(), "held": peak_rss() - base}))
