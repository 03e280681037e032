"""CLIP image embeddings, the currency of Kandinsky 2.2: from prompts (via the prior) and from images.

The decoder never sees text. It is conditioned on a CLIP *image* embedding, which comes either from
the prior (a diffusion model that turns a prompt's text embedding into a plausible image embedding)
or straight from the CLIP image encoder applied to a picture. Both live in the same space, which
is what makes mixing prompts and images possible (mixing.py).

Prior outputs are remembered on the Kit per (prompt, negative prompt, steps, guidance, seed): a
decoder sweep over a fixed prompt runs the prior once.
"""

import hashlib
from dataclasses import dataclass

import PIL.Image
import torch

from .errors import SettingsError, expect_list, expect_whole, is_real, plain_number, wrong_type
from .images import to_rgb
from .kit import Kit, expect_kit
from .quiet import no_truncation_warning
from .settings import check_fraction, check_prior_strength, check_words
from .steps import OnStep, StopSignal, pipeline_callback


@dataclass(frozen=True)
class Embeddings:
    """What the decoder is conditioned on: one row per image."""

    image_embeds: torch.Tensor  # (N, D)
    negative_image_embeds: torch.Tensor  # (N, D), used by classifier-free guidance

    def __len__(self) -> int:
        return self.image_embeds.shape[0]

    def rows(self, start: int, stop: int) -> "Embeddings":
        return Embeddings(self.image_embeds[start:stop], self.negative_image_embeds[start:stop])


def prompt_embeddings(
    kit: Kit,
    prompt: str,
    negative_prompt: str,
    steps: int,
    guidance_scale: float,
    seeds: list[int],
    on_step: OnStep | None = None,
    stop: StopSignal | None = None,
) -> Embeddings:
    """Run the prior once per seed (each on its own CPU generator), reusing remembered results.

    An empty negative prompt gives the zero-image embedding as the negative, as diffusers does.
    """
    expect_kit(kit)
    check_words("prompt", prompt)
    check_words("negative_prompt", negative_prompt)
    steps = expect_whole(steps, "steps", 2, 1000)
    guidance_scale = plain_number(guidance_scale)
    if not is_real(guidance_scale):
        raise wrong_type("guidance_scale", "a number", guidance_scale)
    seeds = [expect_whole(s, f"seeds[{i}]", 0, 2**63 - 1) for i, s in enumerate(expect_list(seeds, "seeds"))]
    if not seeds:
        raise SettingsError("seeds must hold at least one seed")
    rows, negatives = [], []
    for k, seed in enumerate(seeds):
        key = ("prior", prompt, negative_prompt, steps, float(guidance_scale), seed, kit.dtype, kit.prior_tag)
        found = kit.recall(key)
        if found is None:
            callback = pipeline_callback("prior", steps, k + 1, len(seeds), on_step, stop)
            with no_truncation_warning():
                out = kit.prior(
                    prompt,
                    negative_prompt=negative_prompt or None,
                    num_inference_steps=steps,
                    guidance_scale=guidance_scale,
                    generator=torch.Generator("cpu").manual_seed(seed),
                    callback_on_step_end=callback,
                )
            kit.prior_runs += 1
            found = (out.image_embeds, out.negative_image_embeds)
            kit.remember(key, found)
        rows.append(found[0])
        negatives.append(found[1])
    return Embeddings(torch.cat(rows), torch.cat(negatives))


CUT_SHOWN = 12  # ignored tokens a truncation note quotes


def truncation_notes(kit: Kit, texts: list[str]) -> list[str]:
    """A one-line note for each text longer than CLIP's token limit, saying where the model stops reading
    (the first words it ignores and how many tokens follow)."""
    tokenizer, notes = kit.prior.tokenizer, []
    limit = tokenizer.model_max_length
    for text in texts:
        if not text:
            continue
        ids = tokenizer(text, verbose=False).input_ids  # with start and end tokens; verbose=False: no warning of its own
        if len(ids) > limit:
            ignored = ids[limit - 1 : -1]
            cut = tokenizer.decode(ignored[:CUT_SHOWN], skip_special_tokens=True).strip()
            more = f" … and {len(ignored) - CUT_SHOWN} more tokens" if len(ignored) > CUT_SHOWN else ""
            notes.append(f"the text {text[:30]!r}… is {len(ids)} tokens; CLIP reads {limit}, so it ignores: {cut!r}{more}")
    return notes


@torch.no_grad()
def image_embedding(kit: Kit, image: PIL.Image.Image) -> torch.Tensor:
    """The CLIP image encoder's embedding of a picture, (1, D): resized and center-cropped as CLIP sees it."""
    expect_kit(kit)
    rgb = to_rgb(image, "image")[0]  # refuses what is not a usable picture; converted once, here
    digest = hashlib.sha256(image.tobytes()).hexdigest()
    key = ("image", digest, image.size, image.mode, kit.dtype)
    found = kit.recall(key)
    if found is None:
        pixels = clip_input(kit, rgb).to(device=kit.execution_device, dtype=kit.prior.image_encoder.dtype)
        found = kit.prior.image_encoder(pixels)["image_embeds"]
        kit.remember(key, found)
    return found


@torch.no_grad()
def moved_embeddings(kit: Kit, prompt: str, image: PIL.Image.Image, strength: float, steps: int, guidance_scale: float, seeds: list[int]) -> torch.Tensor:
    """The prior's emb2emb: the picture's image embedding noised to `strength` and denoised towards `prompt`,
    one row per seed (N, D). The prior runs int(steps × strength) steps, which must be at least 1."""
    steps = expect_whole(steps, "steps", 2, 1000)
    check_fraction("strength", strength)
    check_prior_strength(steps, strength)
    start = image_embedding(kit, image)
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    with kit.lock, no_truncation_warning():
        out = kit.emb2emb(
            prompt=prompt,
            image=start,
            strength=strength,
            num_images_per_prompt=len(seeds),
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            generator=generators,
        )
    kit.prior_runs += 1
    return out.image_embeds


def clip_input(kit: Kit, image: PIL.Image.Image) -> torch.Tensor:
    """The normalised (1, 3, S, S) tensor the image encoder gets (S = 224 for the real model)."""
    expect_kit(kit)
    return kit.prior.image_processor(to_rgb(image, "image")[0], return_tensors="pt").pixel_values


@torch.no_grad()
def zero_embedding(kit: Kit, rows: int) -> torch.Tensor:
    """The embedding of an all-black image: Kandinsky's 'no condition' for classifier-free guidance."""
    expect_kit(kit)
    rows = expect_whole(rows, "rows", 1, 4096)
    return kit.prior.get_zero_embed(rows, device=kit.execution_device)


def clip_view(kit: Kit, image: PIL.Image.Image) -> PIL.Image.Image:
    """The picture the CLIP image encoder actually sees: resized, center-cropped (224 x 224 for 2.2), un-normalised."""
    expect_kit(kit)
    pixels = clip_input(kit, image)[0].float()  # (3, S, S), normalised
    processor = kit.prior.image_processor
    mean = torch.tensor(processor.image_mean).view(3, 1, 1)
    std = torch.tensor(processor.image_std).view(3, 1, 1)
    rgb = ((pixels * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return PIL.Image.fromarray(rgb)
