"""The tasks, one module each: text→image, image→image, inpainting, depth ControlNet, variations, interpolation.

Each module holds its public function (kl.text_to_image is tasks.text_to_image.text_to_image) (check the settings, then `kit.generate`: request.py) and its
`plan` for the model in this kernel (runner.py runs it; the room's server batches plans of several
visitors). A new task is one module and one line in MODULES; a new backend implements Backend.generate.

    >>> import kandinsky_lab as kl
    >>> kit = kl.load("tiny")
    >>> result = kl.text_to_image(kit, kl.TextToImage(prompt="a red circle", steps=10))
    >>> result.images[0]
"""

from ..settings import TASK_FUNCTIONS, ControlNet, ImageToImage, Inpaint, Interpolation, Sampling, TextToImage, Variations, task_class
from . import controlnet, image_to_image, inpaint, interpolation, text_to_image, variations

MODULES = {
    TextToImage: text_to_image,
    ImageToImage: image_to_image,
    Inpaint: inpaint,
    ControlNet: controlnet,
    Variations: variations,
    Interpolation: interpolation,
}


def check(settings: Sampling) -> None:
    """The checks of the task `settings` belongs to, as its function runs them before any work."""
    MODULES[task_class(settings)].check(settings)


def plans(settings: Sampling):
    """The `plan(kit, settings)` of the task `settings` belongs to."""
    return MODULES[task_class(settings)].plan


def run(kit, settings: Sampling, **options):
    """The task that `settings` describes: text_to_image, image_to_image, inpaint, controlnet, variations or interpolate."""
    cls = task_class(settings)
    return getattr(MODULES[cls], TASK_FUNCTIONS[cls])(kit, settings, **options)
