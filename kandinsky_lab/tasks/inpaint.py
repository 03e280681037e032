"""Inpainting: repaint the white part of a mask as the prompt describes, with the inpainting UNet (extras.py)."""

from ..settings import Inpaint, check_inpaint
from .request import request

check = check_inpaint  # what a local call and the room's server check before any work


def inpaint(kit, settings: Inpaint, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
    """Repaint the white part of `settings.mask` in `settings.image` as the prompt describes.

    The decoder is the inpainting UNet (extras.py: loaded on the first call, sharing MoVQ and the
    scheduler). It works on the latent grid, so the mask is first widened to whole latent cells (one cell
    is `kit.latent_cell` pixels wide: 4 for nano, 8 for the real model): every painted pixel is
    repainted, however thin the stroke. Outside the mask the picture comes back through MoVQ (slightly
    changed); `keep_outside=True` pastes the original back there, blended over `feather` pixels.
    With height/width None it renders at the size image→image would (`start_image_size`).
    """
    return request(kit, settings, Inpaint, check, on_step=on_step, stop=stop, batch_size=batch_size, save_to=save_to, previews=previews)


def plan(kit, settings: Inpaint):
    import PIL.Image

    from .. import extras, masks
    from ..images import to_rgb
    from ..sizes import resize_to
    from .runner import Plan, announce
    from .sizing import with_start_size
    from .text_to_image import prior_asks, prompt_embeds

    rgb, converted = to_rgb(settings.image, "image")
    settings = with_start_size(kit, settings)
    height, width = settings.height, settings.width
    init, resized = resize_to(rgb, height, width)
    wanted = masks.read(settings.mask, settings.image.size)  # checked: the image's size
    if wanted.shape != (height, width):
        wanted = masks.read(masks.to_image(wanted).resize((width, height), PIL.Image.Resampling.NEAREST))
    cells = masks.latent_cells(wanted, kit.latent_cell)
    paste = masks.feather(wanted, settings.feather) if settings.keep_outside else None
    notes = announce(kit, settings) + [n for n in (converted, resized) if n]
    extras.pipeline(kit, "inpaint")  # load the inpainting UNet now, so the memory check counts it
    embed = lambda on_step, stop: prompt_embeds(kit, settings, on_step, stop)  # noqa: E731
    return Plan(settings, notes, embed, draw, inputs={"image": init, "mask_image": cells, "paste": paste}, prior_asks=prior_asks(settings))


def draw(kit, kwargs: dict, rows: list[dict]) -> list:
    import PIL.Image

    from .. import extras

    # one picture and mask per row: diffusers' inpainting pipeline pairs them with the rows itself
    pictures = [row["image"] for row in rows]
    images = extras.pipeline(kit, "inpaint")(image=pictures, mask_image=[row["mask_image"] for row in rows], **kwargs).images
    return [image if row["paste"] is None else PIL.Image.composite(image, row["image"], row["paste"]) for image, row in zip(images, rows)]
