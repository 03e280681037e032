"""A few rendered hearts and a quickly trained LoRA adapter on nano, for the fine-tuning and room tests."""

import kandinsky_lab as kl
from kandinsky_lab import world

QUICK = dict(prior_steps=3, steps=4)


def hearts(count: int = 6, seed: int = 1) -> tuple[list, list[str]]:
    """`count` rendered hearts (nano never saw one) and a caption each."""
    return world.taught("heart", count, seed)


def train(kit, folder, parts=("decoder", "prior"), steps: int = 12, **more):
    """A small adapter (a few steps, a learning rate that makes them change the pictures), saved to `folder`."""
    pictures, captions = hearts()
    settings = kl.FineTune(pictures=pictures, captions=captions, parts=parts, steps=steps, learning_rate=1e-2, batch_size=4, **more)
    return kl.finetune(kit, settings, save_to=folder)
