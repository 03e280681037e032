"""Image → image: the decoder starts from a start picture noised to `strength` (the model card's second snippet)."""

from ..settings import ImageToImage, check_image_to_image
from .request import request

check = check_image_to_image  # what a local call and the room's server check before any work


def image_to_image(kit, settings: ImageToImage, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
    """Like text_to_image, but the decoder starts from `settings.image` noised to `settings.strength`.

    With height/width None it renders at the model's own size (`start_image_size`), the image resized to it.
    """
    return request(kit, settings, ImageToImage, check, on_step=on_step, stop=stop, batch_size=batch_size, save_to=save_to, previews=previews)


def plan(kit, settings: ImageToImage):
    from ..images import to_rgb
    from ..sizes import resize_to
    from .runner import Plan, announce
    from .sizing import with_start_size
    from .text_to_image import prior_asks, prompt_embeds

    rgb, converted = to_rgb(settings.image, "image")  # settings keep the image as given: metadata records that one
    settings = with_start_size(kit, settings)
    init, resized = resize_to(rgb, settings.height, settings.width)
    notes = announce(kit, settings) + [n for n in (converted, resized) if n]
    embed = lambda on_step, stop: prompt_embeds(kit, settings, on_step, stop)  # noqa: E731
    return Plan(settings, notes, embed, draw, inputs={"image": init}, options={"strength": settings.strength}, decoder_steps=int(settings.steps * settings.strength), prior_asks=prior_asks(settings))


def draw(kit, kwargs: dict, rows: list[dict]) -> list:
    # each row's start picture already has the exact size. height/width=None keeps it: diffusers' img2img (0.34
    # and later) passes (width, height) to a (height, width) resize and would transpose non-square pictures.
    kwargs = kwargs | {"height": None, "width": None}
    return kit.img2img(image=[row["image"] for row in rows], **kwargs).images
