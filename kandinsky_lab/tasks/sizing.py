"""The size a task renders at: the model's default, or the start picture's shape at the model's size.

Needs only the kit's numbers (default_size, size_multiple, trained_size), so a room's client plans a
size as the server will; the memory check is the model's side's (Backend.check_fits).
"""

import dataclasses

import PIL.Image

from ..backend import expect_backend
from ..settings import ControlNet, ImageToImage, Inpaint, Sampling, task_class
from ..sizes import check_size, model_size


def planned_size(kit, settings: Sampling, batch_size: int | None = None) -> tuple[int, int]:
    """The (height, width) a task will render for `settings`, or ValueError saying why it cannot
    (the size rule, or on CUDA a size that will not fit in the GPU's free memory)."""
    expect_backend(kit)
    task_class(settings)
    if isinstance(settings, (ImageToImage, Inpaint, ControlNet)) and isinstance(settings.image, PIL.Image.Image) and (settings.height is None or settings.width is None):
        height, width, _ = start_image_size(kit, settings.image)
        settings = dataclasses.replace(settings, height=settings.height or height, width=settings.width or width)
    settings = with_size(kit, settings)
    batch = batch_size or kit.fitting_batch(settings.height, settings.width, settings.num_images)
    kit.check_fits(settings.height, settings.width, min(batch, settings.num_images))
    return settings.height, settings.width


def start_image_size(kit, image: PIL.Image.Image) -> tuple[int, int, str]:
    """(height, width, why) image→image renders at when the settings give no size: the model's own size,
    at the start image's aspect ratio unless the model was trained on one square size only (nano)."""
    if kit.trained_size is not None:
        side = kit.trained_size
        height, width = model_size(image, side, kit.size_multiple, square=True)
        why = f"{kit.source} was trained on {side} × {side} pictures only; a start image of another size or shape gives deformed shapes"
    else:
        height, width = model_size(image, kit.default_size, kit.size_multiple)
        why = f"the model's own size ({kit.default_size} × {kit.default_size} pixels) at the start image's shape: it draws best at the size it was trained at"
    return height, width, why


def with_size(kit, settings):
    """Fill in the model's default size and check the size rule (sizes.py)."""
    height = kit.default_size if settings.height is None else settings.height
    width = kit.default_size if settings.width is None else settings.width
    check_size(height, width, kit.size_multiple)
    return dataclasses.replace(settings, height=height, width=width)


def with_start_size(kit, settings):
    """With a start picture: the size planned_size gives (the picture's shape at the model's size when not set)."""
    height, width = planned_size(kit, settings)
    return dataclasses.replace(settings, height=height, width=width)
