"""Interpolation: prompts and pictures mixed with weights in CLIP image-embedding space (the model card's third snippet)."""

from ..settings import Interpolation, check_interpolation, expect_task
from .request import request


def interpolate(kit, settings: Interpolation, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
    """Mix prompts and images with weights in CLIP image-embedding space, then decode the mix.

    Each prompt goes through the prior with the image's own prior seed, so changing a weight never
    changes what a prompt contributes; images go through the CLIP image encoder.
    """
    return request(kit, settings, Interpolation, check, on_step=on_step, stop=stop, batch_size=batch_size, save_to=save_to, previews=previews)


def check(settings: Interpolation) -> None:
    """The settings' checks, and no empty picture among the items (what a local call and the room's server check)."""
    import PIL.Image

    from ..images import to_rgb

    check_interpolation(settings)
    for i, item in enumerate(settings.items):
        if isinstance(item, PIL.Image.Image):
            to_rgb(item, f"items[{i}]")  # refuses an empty picture before any work (image_embedding converts)


def plan(kit, settings: Interpolation):
    from .runner import Plan, announce, plain_draw
    from .sizing import with_size

    settings = with_size(kit, settings)
    notes = announce(kit, settings)
    embed = lambda on_step, stop: interpolation_embeddings(kit, settings, on_step, stop)  # noqa: E731
    return Plan(settings, notes, embed, plain_draw, prior_asks=tuple(i for i in (*settings.items, settings.negative_prompt) if isinstance(i, str) and i))


def interpolation_embeddings(kit, settings: Interpolation, on_step=None, stop=None):
    """The mixed embeddings of `settings.items` (one row per image), and the negative to guide against."""
    from .. import mixing
    from ..embeddings import Embeddings, image_embedding, prompt_embeddings, zero_embedding
    from ..kit import expect_kit

    expect_kit(kit, "interpolation_embeddings")
    expect_task(settings, Interpolation)
    check_interpolation(settings)
    seeds = settings.prior_seeds()
    parts = []
    for item in settings.items:
        if isinstance(item, str):
            e = prompt_embeddings(kit, item, "", settings.prior_steps, settings.prior_guidance_scale, seeds, on_step, stop)
            parts.append(e.image_embeds)
        else:
            parts.append(image_embedding(kit, item).repeat(len(seeds), 1))
    mixed = mixing.mix(parts, list(settings.weights), settings.mode, settings.normalize_weights)
    if settings.negative_prompt:
        negative = prompt_embeddings(
            kit, settings.negative_prompt, "", settings.prior_steps, settings.prior_guidance_scale, seeds, on_step, stop
        ).image_embeds
    else:
        negative = zero_embedding(kit, len(seeds))
    return Embeddings(mixed, negative)
