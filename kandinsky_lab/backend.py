"""What a task needs from a model, and `load`, which picks the model's home: this kernel or a server.

Every task function checks its settings and hands them to `kit.generate(settings, …)`. Two backends
implement it:

    Kit         kit.py     the model in this kernel: runs the diffusers pipelines (tasks/runner.py)
    RemoteKit   remote.py  a client of a room's model server (serve/): sends the settings as JSON,
                           streams the progress back; imports no torch or diffusers

so the task functions, sweeps, panels, the playground, the gallery, `regenerate` and the batch CLI
work unchanged on either:

    kit = kl.load()                                  # the model here
    kit = kl.load("http://10.0.0.5:8000", token=…)   # the room's server
"""

import os

from .errors import SourceError, wrong_type
from .settings import Sampling

REMOTE_SCHEMES = ("http://", "https://")
SOURCE_VARIABLE = "KANDINSKY_LAB_SOURCE"  # the source `load()` uses when given none
TOKEN_VARIABLE = "KANDINSKY_LAB_TOKEN"  # the room code a remote source uses when given none


class Backend:
    """The part of a kit that tasks, panels and sweeps use. Subclasses set these attributes:

    source, default_size, size_multiple, latent_cell, trained_size, vocabulary, guidance, offload,
    prior_runs (prior calls made for this kit), said (notes already printed)
    """

    said: set
    prior_runs: int
    has_latents: bool = True  # step events carry the latents (a client of a room's server gets pictures of them)
    trains_here: bool = True  # kl.finetune can train its model in this kernel (not a room's client: the model is elsewhere)

    def generate(self, settings, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
        """Make the pictures `settings` describe (already checked by the task function) and return a Result."""
        raise NotImplementedError

    def expected_seconds(self, settings, height: int, width: int, wait: bool = True) -> float | None:
        """Roughly how long a run takes where the model is; None when unknown now."""
        raise NotImplementedError

    def check_fits(self, height: int, width: int, batch: int) -> None:
        """Refuse (ValueError) a size predicted not to fit in the model's GPU memory."""
        raise NotImplementedError

    def fitting_batch(self, height: int, width: int, images: int) -> int:
        """How many of `images` pictures one decoder call makes (all of them unless the GPU's memory says fewer)."""
        return images

    def depth_map(self, picture):
        """The picture's depth as an L picture (depth.py)."""
        raise NotImplementedError

    adapter = None  # the LoRA adapter every task draws with (adapters.Adapter), or None: the base model

    def load_adapter(self, folder, scale: float = 1.0):
        """Draw every task with the LoRA adapter in `folder` (adapters.py) at `scale`; returns it."""
        raise NotImplementedError

    def unload_adapter(self):
        """Draw with the base model again; returns the adapter that was loaded (or None)."""
        raise NotImplementedError

    @property
    def example_prompts(self) -> tuple[str, str]:
        """Prompts to start with: shapes for nano (it knows nothing else), the model card's otherwise."""
        return EXAMPLE_PROMPTS["nano" if self.source == "nano" else "any"]

    def guidance_scale(self, task: str) -> float:
        """The decoder guidance a task's settings get when they leave it as None (so far only ControlNet's):
        the one the model's folder recommends for `task`, else GUIDANCE_SCALE."""
        from .errors import KitError

        if task not in GUIDED_TASKS:
            raise KitError(f"only {', '.join(GUIDED_TASKS)} leaves its guidance to the model, not {task!r}")
        return float((self.guidance or {}).get(task, GUIDANCE_SCALE))


# (text→image, image→image) prompts a model draws well, to start the panels with
EXAMPLE_PROMPTS = {
    "nano": ("a red circle on a white background", "a large yellow star on a blue background"),
    "any": ("a red cat, 4k photo", "a fantasy landscape, cinematic lighting"),  # the model card's
}
GUIDANCE_SCALE = Sampling.guidance_scale  # the decoder's where the model's folder recommends none: 4, as diffusers and the model card
GUIDED_TASKS = ("controlnet",)  # tasks whose settings may leave the decoder's guidance to the model


def expect_backend(kit) -> None:
    """Refuse anything but a kit from kl.load(), naming what was passed (a common slip: the pipeline, or the settings first)."""
    if not isinstance(kit, Backend):
        raise wrong_type("kit", "a Kit from kl.load()", kit)


def is_remote(source) -> bool:
    return isinstance(source, str) and source.startswith(REMOTE_SCHEMES)


def load(source: str | os.PathLike | None = None, *, token: str | None = None, **options) -> Backend:
    """A kit for `source`: the model in this kernel (loading.py: "nano", "tiny", a folder, the hub id; `device`,
    `dtype`, `offload`), or a room server's address "http://host:port" (remote.py; `token` is the room code,
    else $KANDINSKY_LAB_TOKEN). With no source, $KANDINSKY_LAB_SOURCE, else the real model on a GPU, nano elsewhere."""
    if source is None and os.environ.get(SOURCE_VARIABLE):
        source = os.environ[SOURCE_VARIABLE]
    if is_remote(source):
        if options:
            raise SourceError(f"{', '.join(sorted(options))} choose where a model runs in this kernel; {source} chooses for itself")
        from .remote import RemoteKit

        return RemoteKit(source, token=os.environ.get(TOKEN_VARIABLE) if token is None else token)
    if token is not None:
        raise wrong_type("token", "None for a model in this kernel (a room code is for a server's address)", token)
    from .loading import load as load_here

    return load_here(source, **options)
