"""Depth ControlNet: text→image (or image→image) whose layout follows a depth hint (extras.py's UNet)."""

import dataclasses

from ..settings import ControlNet, check_controlnet
from .request import request

check = check_controlnet  # what a local call and the room's server check before any work


def controlnet(kit, settings: ControlNet, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
    """Text→image (or, with `settings.image`, image→image) whose layout follows the depth hint.

    The ControlNet UNet (extras.py: loaded on the first call, sharing MoVQ and the scheduler) reads the
    hint beside the latents, at 8 × the latents' size (the size of the picture for the real model,
    twice it for nano): the kit resizes the hint to that. With a start image the prompt moves the
    picture's own embedding (emb2emb, `prior_strength`) before the decoder starts from the picture noised
    to `strength`, as the diffusers guide does.
    """
    return request(kit, settings, ControlNet, check, on_step=on_step, stop=stop, batch_size=batch_size, save_to=save_to, previews=previews)


def with_kit_guidance(kit, settings: ControlNet) -> ControlNet:
    """`settings` with a guidance_scale of None (the default) made the model's own: kit.guidance_scale("controlnet")."""
    if settings.guidance_scale is not None:
        return settings
    return dataclasses.replace(settings, guidance_scale=kit.guidance_scale("controlnet"))


def plan(kit, settings: ControlNet):
    from .. import extras
    from ..images import to_rgb
    from ..sizes import resize_to
    from .runner import Plan, announce
    from .sizing import with_size, with_start_size
    from .text_to_image import prior_asks, prompt_embeds
    from .variations import moved

    settings = with_kit_guidance(kit, settings)  # the result and its PNG record the number
    if settings.image is not None:
        settings = with_start_size(kit, settings)
        rgb, converted = to_rgb(settings.image, "image")
        init, resized = resize_to(rgb, settings.height, settings.width)
        notes = [n for n in (converted, resized) if n]
    else:
        settings, init, notes = with_size(kit, settings), None, []
    notes = announce(kit, settings) + notes
    hint = hint_tensor(kit, settings.hint, settings.height, settings.width)  # refuses an empty hint before any work
    if init is None:
        extras.pipeline(kit, "controlnet")
        embed = lambda on_step, stop: prompt_embeds(kit, settings, on_step, stop)  # noqa: E731
        return Plan(settings, notes, embed, draw_from_noise, inputs={"hint": hint}, prior_asks=prior_asks(settings))
    extras.image_to_image_pipeline(kit, "controlnet")
    embed = lambda on_step, stop: moved(kit, settings, settings.prompt, settings.image, settings.prior_strength, settings.negative_prompt)  # noqa: E731
    steps = int(settings.steps * settings.strength)
    return Plan(settings, notes, embed, draw_from_picture, inputs={"hint": hint, "image": init}, options={"strength": settings.strength}, decoder_steps=steps)


def hint_tensor(kit, hint, height: int, width: int):
    """(1, 3, h, w) in [0, 1] on the Kit's device: the hint's grey levels at the size the ControlNet UNet's
    hint block reads (8 × the latents' size; its three stride-2 convolutions bring it to the latents')."""
    import numpy as np
    import PIL.Image
    import torch

    from ..images import to_rgb

    side = lambda pixels: pixels // kit.latent_cell * 8  # noqa: E731
    grey = to_rgb(hint, "hint")[0].convert("L").resize((side(width), side(height)), PIL.Image.Resampling.BILINEAR)
    values = torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255)
    return values[None, None].repeat(1, 3, 1, 1).to(device=kit.execution_device, dtype=kit.dtype)


def _old_callback(pipe, kwargs: dict) -> dict:
    # diffusers 0.42's ControlNet pipelines still take the older per-step `callback(step, t, latents)`
    on_end = kwargs.pop("callback_on_step_end")
    return kwargs | {"callback": lambda i, t, latents: on_end(pipe, i, t, {"latents": latents})}


def draw_from_noise(kit, kwargs: dict, rows: list[dict]) -> list:
    import torch

    from .. import extras

    pipe = extras.pipeline(kit, "controlnet")
    return pipe(hint=torch.cat([row["hint"] for row in rows]), **_old_callback(pipe, kwargs)).images


def draw_from_picture(kit, kwargs: dict, rows: list[dict]) -> list:
    import torch

    from .. import extras

    pipe = extras.image_to_image_pipeline(kit, "controlnet")
    # the start pictures have the exact size already; diffusers 0.42's ControlNet image→image passes (width,
    # height) to a (height, width) resize, as its plain image→image does: no size keeps non-square pictures upright
    kwargs = _old_callback(pipe, kwargs) | {"height": None, "width": None}
    return pipe(image=[row["image"] for row in rows], hint=torch.cat([row["hint"] for row in rows]), **kwargs).images
