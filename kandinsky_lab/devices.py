"""Where the model runs: device and dtype defaults, and the memory presets for GPUs.

    device: CUDA if present, else Apple MPS, else CPU.
    dtype:  float16 on CUDA and MPS (half the memory, what the real model is shipped for), float32 on CPU.
    offload (GPU only):
        None          - every module on the GPU: fastest, needs the most memory (the real model: 10.6 GiB
                        peak at 768x768, 11.7 at 1024x1024; fits a 16 GB Colab T4).
        "model"       - accelerate's model CPU offload: a module moves to the GPU only while it runs
                        (5.4 GiB peak at any size, about twice the time).
        "sequential"  - accelerate's sequential offload: layer by layer. Needs the least memory (3.4 GiB),
                        is slowest (about 11x the time).
    (Measured on the real-scale replica: benchmarks/results.md, "Real scale (GPU)".)
"""

import torch

OFFLOAD_PRESETS = (None, "model", "sequential")


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def resolve(device: str | torch.device | None, dtype: torch.dtype | None, offload: str | None):
    """Check the three choices together and fill in defaults; returns (device, dtype, offload)."""
    device = default_device() if device is None else torch.device(device)
    dtype = default_dtype(device) if dtype is None else dtype
    if offload not in OFFLOAD_PRESETS:
        raise ValueError(f"offload must be one of {OFFLOAD_PRESETS}, got {offload!r}")
    if offload is not None and device.type == "cpu":
        raise ValueError(f"offload={offload!r} moves modules between CPU and an accelerator; on the CPU use offload=None")
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be torch.float32, torch.float16 or torch.bfloat16, got {dtype}")
    return device, dtype, offload


def place(pipelines, device: torch.device, offload: str | None) -> None:
    """Put the pipelines' modules on `device` according to the memory preset."""
    for pipe in pipelines:
        if offload is None:
            pipe.to(device)
        elif offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.enable_sequential_cpu_offload(device=device)
