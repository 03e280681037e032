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

from .errors import SettingsError, wrong_type

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
    if device is not None and not isinstance(device, (str, torch.device)):
        raise wrong_type("device", 'a text such as "cuda", "mps" or "cpu", a torch.device or None', device)
    try:
        device = default_device() if device is None else torch.device(device)
    except RuntimeError as error:  # torch's message lists every device type it knows
        raise SettingsError(f'device {device!r} is not a device torch knows: use "cuda", "mps", "cpu" or None ({str(error)[:80]})') from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError(f"device={str(device)!r} but torch sees no CUDA GPU (torch {torch.__version__}); use device=None or \"cpu\"")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise SettingsError('device="mps" but this machine has no Apple GPU available to torch; use device=None or "cpu"')
    if device.type not in ("cuda", "mps", "cpu"):
        raise SettingsError(f'device type {device.type!r} is not supported: use "cuda", "mps", "cpu" or None')
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise wrong_type("dtype", "torch.float32, torch.float16 or torch.bfloat16", dtype)
    dtype = default_dtype(device) if dtype is None else dtype
    if not isinstance(offload, (str, type(None))) or offload not in OFFLOAD_PRESETS:
        raise SettingsError(f"offload must be one of {OFFLOAD_PRESETS}, got {offload!r}")
    if offload is not None and device.type == "cpu":
        raise SettingsError(f"offload={offload!r} moves modules between CPU and an accelerator; on the CPU use offload=None")
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise SettingsError(f"dtype must be torch.float32, torch.float16 or torch.bfloat16, got {dtype}")
    if dtype == torch.float16 and device.type == "cpu":  # diffusers: "cannot run with cpu device"
        raise SettingsError("dtype=torch.float16 does not run on the CPU (PyTorch lacks CPU kernels for it): use torch.bfloat16 or torch.float32")
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
