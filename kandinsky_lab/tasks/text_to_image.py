"""Text → image: prompt -> prior -> decoder -> pictures (the model card's first snippet)."""

from ..settings import TextToImage, check_text
from .request import request

check = check_text  # what a local call and the room's server check before any work


def text_to_image(kit, settings: TextToImage, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
    """Prompt -> prior -> decoder -> pictures.

        result = kl.text_to_image(kit, kl.TextToImage(prompt="a red circle", steps=10))
        result.images[0]

    `on_step` gets a StepEvent after every step, `stop` (a StopSignal) ends the run after the current
    step keeping finished batches, `batch_size` pictures per decoder call (default: all that fit),
    `save_to` a folder each picture is saved to as its batch finishes, `previews` ("colors" or "decoded")
    adds pictures of the batch so far to the decoder's events.
    """
    return request(kit, settings, TextToImage, check, on_step=on_step, stop=stop, batch_size=batch_size, save_to=save_to, previews=previews)


def plan(kit, settings: TextToImage):
    from .runner import Plan, announce, plain_draw
    from .sizing import with_size

    settings = with_size(kit, settings)
    notes = announce(kit, settings)
    embed = lambda on_step, stop: prompt_embeds(kit, settings, on_step, stop)  # noqa: E731
    return Plan(settings, notes, embed, plain_draw, prior_asks=prior_asks(settings))


def prior_asks(s) -> tuple[str, ...]:
    """The prompt, for a server to batch through the prior (only without a negative prompt, which diffusers'
    prior runs in the same call with the same generator: no batch would reproduce it)."""
    return () if s.negative_prompt else (s.prompt,)


def prompt_embeds(kit, s: TextToImage, on_step, stop):
    """The prior's embeddings for the settings' prompt and negative prompt, one row per picture."""
    from ..embeddings import prompt_embeddings

    return prompt_embeddings(kit, s.prompt, s.negative_prompt, s.prior_steps, s.prior_guidance_scale, s.prior_seeds(), on_step, stop)
