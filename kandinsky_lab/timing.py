"""How fast the loaded model runs on this machine: measured once per Kit, for knowledge.py's time notes.

A UNet step and a MoVQ decode cost a fixed part, a part linear in the pixels (convolutions), and
attention, which grows with the square of the tokens and takes over at large sizes; `measure` times
them, `knowledge.run_seconds` turns the measurement into seconds for a run.
"""

import time

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

from .knowledge import run_seconds

CALIBRATION_SCALES = (1, 2)  # UNet and MoVQ timed at the trained side × these, to fit time per pixel
ATTENTION_PROBE_TOKENS = 2048  # one attention call of this many tokens measures the machine's attention speed


def expected_seconds(kit, settings, height: int, width: int, wait: bool = True) -> float | None:
    """Roughly how long the run will take here; None when `wait` is False and a run holds the Kit."""
    timing = calibrate(kit, wait)
    return None if timing is None else run_seconds(timing, settings, height, width)


def _attention_sizes(module: torch.nn.Module, call) -> list[tuple[int, int, int, int]]:
    """(batch, query tokens, extra key tokens, inner width) of every attention layer that `call` runs."""
    seen, hooks = [], []

    def record(layer, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]
        batch, tokens = x.shape[0], (x.shape[2] * x.shape[3] if x.dim() == 4 else x.shape[1])
        extra = kwargs.get("encoder_hidden_states")
        seen.append((batch, tokens, 0 if extra is None else extra.shape[1], layer.inner_dim))

    for layer in module.modules():
        if isinstance(layer, Attention):
            hooks.append(layer.register_forward_pre_hook(record, with_kwargs=True))
    try:
        call()
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def _timed(call, device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)
    call()  # the first call of a shape chooses kernels
    sync(device)
    start = time.perf_counter()
    call()
    sync(device)
    return time.perf_counter() - start


def calibrate(kit, wait: bool = True) -> dict | None:
    """`measure(kit)` once per Kit, holding the Kit's lock; None when `wait` is False and a run holds it."""
    if kit.timing is not None:
        return kit.timing
    if not kit.lock.acquire(blocking=wait):
        return None
    try:
        if kit.timing is None:
            kit.timing = measure(kit)
        return kit.timing
    finally:
        kit.lock.release()


@torch.no_grad()
def measure(kit) -> dict:
    """Measure, once per Kit, what the time estimate needs (a few tenths of a second on nano's CPU).

    A UNet step and a MoVQ decode cost a fixed part, a part linear in the pixels (convolutions), and
    attention, which grows with the square of the tokens and takes over at large sizes. So: both are
    timed at the trained size and twice its side (the linear line), their attention layers' token
    counts are recorded, and one attention call gives this machine's attention speed.
    """
    unet, movq, prior = kit.decoder.unet, kit.decoder.movq, kit.prior.prior
    device, dtype, side = kit.execution_device, kit.dtype, kit.trained_size
    factor = 2 ** (len(movq.config.block_out_channels) - 1)
    timing = {"pixels": side * side}
    for name, module in (("unet", unet), ("movq", movq)):
        points = []
        for scale in CALIBRATION_SCALES:
            s = side * scale // factor
            latents = torch.zeros(2, unet.config.in_channels, s, s, device=device, dtype=dtype)
            embeds = torch.zeros(2, unet.config.encoder_hid_dim, device=device, dtype=dtype)
            if name == "unet":
                call = lambda: unet(latents, torch.tensor(500, device=device), encoder_hidden_states=None, added_cond_kwargs={"image_embeds": embeds})  # noqa: E731
            else:
                call = lambda: movq.decode(latents[:1, : movq.config.latent_channels], force_not_quantize=True)  # noqa: E731
            points.append(((side * scale) ** 2, _timed(call, device)))
        (p0, t0), (p1, t1) = points
        per_pixel = max(0.0, (t1 - t0) / (p1 - p0))
        # attention layers' token counts, recorded at the larger size (the last `call`)
        attention = _attention_sizes(module, call)
        timing[name] = {"fixed": max(0.0, t0 - per_pixel * p0), "per_pixel": per_pixel, "attention": attention, "attention_pixels": p1}
    q = torch.zeros(1, 1, ATTENTION_PROBE_TOKENS, 64, device=device, dtype=dtype)
    timing["attention_flops_per_s"] = 4 * ATTENTION_PROBE_TOKENS**2 * 64 / _timed(lambda: F.scaled_dot_product_attention(q, q, q), device)
    dim = prior.config.embedding_dim
    width = prior.encoder_hidden_states_proj.in_features if prior.encoder_hidden_states_proj is not None else dim
    hidden = torch.zeros(2, dim, device=device, dtype=dtype)
    tokens = torch.zeros(2, prior.config.num_embeddings, width, device=device, dtype=dtype)
    mask = torch.ones(2, prior.config.num_embeddings, dtype=torch.bool, device=device)
    timing["prior_step_s"] = _timed(lambda: prior(hidden, timestep=500, proj_embedding=hidden, encoder_hidden_states=tokens, attention_mask=mask), device)
    return timing


