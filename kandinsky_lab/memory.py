"""Will a picture fit in the GPU's memory? A prediction made before the run, from two small probes.

Running out of GPU memory after the prior and half the decoder wastes the wait. So before a run on
CUDA the kit predicts the decoder's peak memory for the asked size and batch, and refuses a size that
cannot fit with a message naming the largest one that does (and the preset that needs less):

    extra ≈ max(prior, one UNet step, one MoVQ decode): the memory each needs beyond what is
            allocated already (the weights the preset keeps on the GPU), against what is still free
    prior        a prior pipeline call (with model offload: its biggest module moved in); no pixels
    UNet step    a forward pass on 2 × batch latents (classifier-free guidance doubles the batch)
    MoVQ decode  batch latents to pixels (image→image's encode of its input is not probed)

The last two grow linearly with the pixels: convolutions and norms do, and diffusers' attention runs
through PyTorch's scaled_dot_product_attention, whose CUDA kernels need memory linear in the tokens.
So two probes at small sizes (`probe`, about a second, once per Kit) give a `Line` for each: a
fixed part (with model offload: the module moved in) plus bytes per pixel. Only CUDA is
checked: on the CPU a large picture is slow rather than fatal, and MPS reports no peak.
tests/test_gpu.py compares the prediction with measured peaks.
"""

import math
from dataclasses import dataclass

import torch

from .errors import SettingsError
from .sizes import MAX_SIDE

HEADROOM = 0.9  # plan for at most this share of the free memory: the allocator fragments
PROBE_SIDES = (4, 8)  # probe sizes, in multiples of the Kit's size multiple


@dataclass(frozen=True)
class Line:
    """Bytes needed beyond what is allocated = fixed + per_pixel × pixels × images."""

    fixed: float
    per_pixel: float

    def at(self, pixels: int, images: int = 1) -> float:
        return self.fixed + self.per_pixel * pixels * images

    @classmethod
    def through(cls, pixels: tuple[int, int], peaks: tuple[int, int]) -> "Line":
        per_pixel = max(0.0, (peaks[1] - peaks[0]) / (pixels[1] - pixels[0]))
        return cls(peaks[0] - per_pixel * pixels[0], per_pixel)


def needed_bytes(lines: dict[str, Line], height: int, width: int, batch: int) -> float:
    return max(line.at(height * width, batch) for line in lines.values())


def largest_side(lines: dict[str, Line], usable: float, batch: int, multiple: int) -> int:
    """The largest square side (a multiple of `multiple`, at most MAX_SIDE) predicted to fit in `usable` bytes; 0 if none."""
    cap = MAX_SIDE // multiple * multiple
    if any(line.fixed > usable for line in lines.values()):
        return 0
    rooms = [(usable - line.fixed) / (line.per_pixel * batch) for line in lines.values() if line.per_pixel]
    return min(cap, int(math.sqrt(min(rooms))) // multiple * multiple) if rooms else cap


def check(lines: dict[str, Line], height: int, width: int, batch: int, usable: float, multiple: int, offload: str | None, where: str = "the GPU") -> None:
    """Raise ValueError when (height, width, batch) is predicted not to fit in `usable` bytes."""
    need = needed_bytes(lines, height, width, batch)
    if need <= usable:
        return
    side = largest_side(lines, usable, batch, multiple)
    fits = f"use height and width up to {side} (e.g. {side} x {side})" if side >= multiple else "no size fits"
    tips = (["batch_size=1"] if batch > 1 else []) + (
        [f'load with offload="{"model" if offload is None else "sequential"}"'] if offload != "sequential" else []
    )
    raise SettingsError(
        f"height={height}, width={width} ({batch} image(s) per batch) needs about {need / 2**30:.1f} GiB on {where} "
        f"(offload={offload!r}), which has {usable / 2**30:.1f} GiB free: {fits}"
        + (f", or {' or '.join(tips)}" if tips else "")
    )


def usable_bytes(device: torch.device) -> float:
    """What this process can still allocate on a CUDA device, with headroom: free memory plus PyTorch's
    cached blocks, and no more than a cap set with `torch.cuda.set_per_process_memory_fraction` allows
    (how a 16 GB T4 is simulated on a larger card)."""
    free, total = torch.cuda.mem_get_info(device)
    allocated = torch.cuda.memory_allocated(device)
    room = free + torch.cuda.memory_reserved(device) - allocated
    fraction = getattr(torch.cuda, "get_per_process_memory_fraction", lambda _: 1.0)(device)  # torch >= 2.6
    if fraction < 1.0:
        room = min(room, fraction * total - allocated)
    return HEADROOM * max(0.0, room)


@torch.no_grad()
def probe(kit) -> dict[str, Line]:
    """Measure one UNet step and one MoVQ decode at two small sizes on the Kit's CUDA device."""
    device, dtype, multiple = kit.execution_device, kit.dtype, kit.size_multiple
    unet, movq = kit.decoder.unet, kit.decoder.movq
    factor = 2 ** (len(movq.config.block_out_channels) - 1)
    peaks: dict[str, list[int]] = {"prior": [], "unet": [], "movq": []}
    pixels = []
    for side in (n * multiple for n in PROBE_SIDES):
        pixels.append(side * side)
        latents = torch.zeros(2, unet.config.in_channels, side // factor, side // factor, device=device, dtype=dtype)
        embeds = torch.zeros(2, unet.config.encoder_hid_dim, device=device, dtype=dtype)
        timestep = torch.tensor(999, device=device)
        for name, call in (
            ("prior", lambda: kit.prior(prompt="a", num_inference_steps=2, generator=torch.Generator().manual_seed(0))),
            ("unet", lambda: unet(latents, timestep, encoder_hidden_states=None, added_cond_kwargs={"image_embeds": embeds})),
            ("movq", lambda: movq.decode(latents[:1, : movq.config.latent_channels], force_not_quantize=True)),
        ):
            kit.decoder.maybe_free_model_hooks()  # with model offload: each probe moves its module in, as a run does
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            call()
            torch.cuda.synchronize(device)
            peaks[name].append(torch.cuda.max_memory_allocated(device) - before)
    kit.decoder.maybe_free_model_hooks()
    return {name: Line.through(tuple(pixels), tuple(values)) for name, values in peaks.items()}


def room(kit) -> tuple[dict[str, Line], float, str] | None:
    """On CUDA: the Kit's probed lines (probing once), the usable bytes and the device's name. None elsewhere."""
    device = kit.execution_device
    if device.type != "cuda":
        return None
    with kit.lock:
        if kit.memory_lines is None:
            kit.memory_lines = probe(kit)
    return kit.memory_lines, usable_bytes(device), f"{torch.cuda.get_device_name(device)} ({device})"


def fitting_batch(kit, height: int, width: int, images: int) -> int:
    """How many of `images` pictures to decode at once: all of them off CUDA or when they fit, else the
    most that are predicted to fit (at least 1: `check_fits` then says why not even one does)."""
    found = room(kit)
    if found is None:
        return images
    lines, usable, _ = found
    return max((b for b in range(1, images + 1) if needed_bytes(lines, height, width, b) <= usable), default=1)


def check_fits(kit, height: int, width: int, batch: int) -> None:
    """Raise ValueError when the run is predicted not to fit in the GPU's memory; no check off CUDA."""
    found = room(kit)
    if found is not None:
        lines, usable, where = found
        check(lines, height, width, batch, usable, kit.size_multiple, kit.offload, where)
