"""kandinsky-lab: learn and experiment with Kandinsky 2.2 in Jupyter.

    import kandinsky_lab as kl
    kit = kl.load()                      # the real model on a GPU, the offline model elsewhere
    result = kl.text_to_image(kit, kl.TextToImage(prompt="a red cat, 4k photo"))
    result.images[0]

One loaded `Kit` serves every task with a single copy of the weights; `kl.load("http://host:port")`
gives a client of a room's model server instead (backend.py). Names are imported on first use, so a
client kernel that never touches the model never imports torch or diffusers.
"""

import importlib

__version__ = "0.1.0"

# name -> the module that defines it (imported on first use: PEP 562)
_HOMES = {
    "depth": ("depth_map",),
    "devices": ("OFFLOAD_PRESETS",),
    "embeddings": ("Embeddings", "clip_input", "clip_view", "image_embedding", "moved_embeddings", "prompt_embeddings", "zero_embedding"),
    "errors": ("CallbackError", "FileFormatError", "GPUOutOfMemory", "ImageError", "KitError", "SaveError", "SettingsError", "SourceError", "WrongType"),
    "result": ("Result",),
    "tasks": ("run",),
    "tasks.text_to_image": ("text_to_image",),
    "tasks.image_to_image": ("image_to_image",),
    "tasks.inpaint": ("inpaint",),
    "tasks.controlnet": ("controlnet",),
    "tasks.variations": ("variations",),
    "tasks.interpolation": ("interpolate", "interpolation_embeddings"),
    "tasks.sizing": ("planned_size",),
    "fine_tuning": ("FineTune", "Training", "TrainingEvent", "finetune"),
    "training_view": ("TrainingView",),
    "grids": ("image_grid", "image_row"),
    "inside": ("denoising_steps", "denoising_strip", "final_picture", "guidance_grid", "latent_channels", "similarity"),
    "kit": ("Kit",),
    "backend": ("Backend", "load"),
    "remote": ("RemoteKit",),
    "loading": ("HUB_MODEL", "default_source"),
    "metadata": ("load_settings", "read_record", "regenerate", "save_image"),
    "mixing": ("mix",),
    "samples": ("sample", "sample_names", "samples"),
    "settings": ("ControlNet", "ImageToImage", "Inpaint", "Interpolation", "Sampling", "TextToImage", "Variations"),
    "sizes": ("check_size", "fit_size"),
    "steps": ("Interrupted", "Previews", "ProgressBar", "StepEvent", "StopSignal", "decoded_preview", "latents_preview"),
    "sweeps": ("Sweep", "sweep", "triangle", "triangle_weights"),
    "tour": ("architecture", "shapes"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}

# The public API: what notebooks use, and what tests/test_reliability.py walks with bad input (every
# refusal a KitError).
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value  # found once
        return value
    if name in ("devices", "masks", "tasks", "knowledge", "memory", "extras", "serve", "wire", "remote", "adapters"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'kandinsky_lab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
