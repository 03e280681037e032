"""kandinsky-lab: learn and experiment with Kandinsky 2.2 in Jupyter.

    import kandinsky_lab as kl
    kit = kl.load()                      # the real model on a GPU, the offline model elsewhere
    result = kl.text_to_image(kit, kl.TextToImage(prompt="a red cat, 4k photo"))
    result.images[0]

One loaded `Kit` serves text→image, image→image and interpolation with a single copy of the weights.
"""

from . import devices, masks
from .devices import OFFLOAD_PRESETS
from .depth import depth_map
from .embeddings import Embeddings, clip_input, clip_view, image_embedding, moved_embeddings, prompt_embeddings, zero_embedding
from .errors import CallbackError, FileFormatError, GPUOutOfMemory, ImageError, KitError, SaveError, SettingsError, SourceError, WrongType
from .generate import Result, controlnet, image_to_image, inpaint, interpolate, interpolation_embeddings, planned_size, run, text_to_image, variations
from .grids import image_grid, image_row
from .inside import denoising_steps, denoising_strip, final_picture, guidance_grid, latent_channels, similarity
from .kit import Kit
from .loading import HUB_MODEL, default_source, load
from .metadata import load_settings, read_record, regenerate, save_image
from .mixing import mix
from .samples import sample, sample_names, samples
from .settings import ControlNet, ImageToImage, Inpaint, Interpolation, Sampling, TextToImage, Variations
from .sizes import check_size, fit_size
from .steps import Interrupted, Previews, ProgressBar, StepEvent, StopSignal, decoded_preview, latents_preview
from .sweeps import Sweep, sweep, triangle, triangle_weights
from .tour import architecture, shapes

__version__ = "0.1.0"

# The public API: what notebooks use, and what tests/test_reliability.py walks with bad input (every
# refusal a KitError).
__all__ = [name for name, value in list(globals().items()) if not name.startswith("_") and not isinstance(value, type(devices))]
