"""Variations: new pictures from a picture's own CLIP image embedding (unCLIP's variations), no prompt needed."""

from ..settings import Variations, check_variations
from .request import request

check = check_variations  # what a local call and the room's server check before any work


def variations(kit, settings: Variations, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
    """Pictures from `settings.image`'s CLIP image embedding alone (no prompt: unCLIP's variations).

    With a prompt, the prior's emb2emb first moves the picture's embedding towards the prompt by
    `prior_strength`. Each picture differs only by its decoder seed (and, with a prompt, its prior seed).
    """
    return request(kit, settings, Variations, check, on_step=on_step, stop=stop, batch_size=batch_size, save_to=save_to, previews=previews)


def plan(kit, settings: Variations):
    from ..images import to_rgb
    from .runner import Plan, announce, plain_draw
    from .sizing import with_size

    to_rgb(settings.image, "image")
    settings = with_size(kit, settings)
    notes = announce(kit, settings)
    if settings.prompt.strip():
        embed = lambda on_step, stop: moved(kit, settings, settings.prompt, settings.image, settings.prior_strength, settings.negative_prompt)  # noqa: E731
    else:
        embed = lambda on_step, stop: picture_embeds(kit, settings)  # noqa: E731
    return Plan(settings, notes, embed, plain_draw)


def picture_embeds(kit, s: Variations):
    from ..embeddings import Embeddings, image_embedding, prompt_embeddings, zero_embedding

    rows = len(s.prior_seeds())
    picture = image_embedding(kit, s.image).repeat(rows, 1)
    if s.negative_prompt.strip():
        negative = prompt_embeddings(kit, s.negative_prompt, "", s.prior_steps, s.prior_guidance_scale, s.prior_seeds()).image_embeds
    else:
        negative = zero_embedding(kit, rows)
    return Embeddings(picture, negative)


def moved(kit, s, prompt: str, image, strength: float, negative_prompt: str):
    """emb2emb for the prompt; the negative moved all the way to the negative prompt (strength 1, as the
    diffusers guide does), or the zero-image embedding without one."""
    from ..embeddings import Embeddings, moved_embeddings, zero_embedding

    seeds = s.prior_seeds()
    picture = moved_embeddings(kit, prompt, image, strength, s.prior_steps, s.prior_guidance_scale, seeds)
    if negative_prompt.strip():
        negative = moved_embeddings(kit, negative_prompt, image, 1.0, s.prior_steps, s.prior_guidance_scale, seeds)
    else:
        negative = zero_embedding(kit, len(seeds))
    return Embeddings(picture, negative)
