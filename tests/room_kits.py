"""Kits the room's test server loads by "module:function" (serve/replica.py's open_source)."""

import torch

import kandinsky_lab as kl

OUT_OF_MEMORY_WIDTH = 96  # a width no other room test asks for: the decoder "runs out of memory" there


def nano_that_runs_out_at_96():
    """nano, except that a decoder call at width 96 raises CUDA's out-of-memory error, as a full GPU would:
    how the tests see that the server survives one and tells the client what a local kit would."""
    kit = kl.load("nano", device="cpu")
    unet = kit.decoder.unet
    forward = unet.forward

    def forward_or_out_of_memory(sample, *args, **kwargs):
        if sample.shape[-1] * kit.latent_cell == OUT_OF_MEMORY_WIDTH:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (the room tests' kit)")
        return forward(sample, *args, **kwargs)

    unet.forward = forward_or_out_of_memory
    return kit
