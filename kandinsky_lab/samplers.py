"""The decoder's sampler: which diffusers scheduler walks the UNet from noise to latents.

The model card decodes with DDPM (the scheduler shipped in the decoder repository), which adds fresh
noise at each step; the others add none, and DPM++ 2M and UniPC reuse the previous prediction, so at
very few steps they are ahead (on nano: at 2 steps; from 5 steps every sampler draws what DDPM-50
draws — benchmarks/results.md). Each one is built with `from_config` on the loaded scheduler's
config, so it keeps the model's noise schedule and prediction type (epsilon for the real model, v
for nano):

    "ddpm"   DDPMScheduler               ancestral, the card's default
    "ddim"   DDIMScheduler               deterministic
    "dpm++"  DPMSolverMultistepScheduler DPM-Solver++ (2M), deterministic
    "unipc"  UniPCMultistepScheduler     deterministic (see `UniPCScheduler`)
    "euler"  Euler's method (EulerDiscreteScheduler), see `VPEulerScheduler`

    kl.text_to_image(kit, kl.TextToImage(prompt="a red circle", sampler="dpm++", steps=15))
"""

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_euler_discrete import EulerDiscreteSchedulerOutput

from .errors import SettingsError
from .settings import SAMPLER_LABELS, SAMPLERS


class VPEulerScheduler(EulerDiscreteScheduler):
    """Euler's method for pipelines that never call `scale_model_input`, as Kandinsky 2.2's do.

    EulerDiscreteScheduler keeps latents at the scale x0 + sigma * noise and expects the pipeline to
    divide them by sqrt(sigma² + 1) before the UNet. The 2.2 pipelines pass latents straight to the
    UNet, so this subclass keeps them divided all along (the scale the UNet was trained on) and
    converts around each step: the same Euler steps, with the UNet seeing what it expects.
    """

    @property
    def init_noise_sigma(self) -> float:
        return 1.0  # latents start as unit-variance noise at that scale

    def _scale(self, indices) -> torch.Tensor:
        return (self.sigmas[indices] ** 2 + 1) ** 0.5

    def step(self, model_output, timestep, sample, *args, return_dict: bool = True, **kwargs):
        if self.step_index is None:
            self._init_step_index(timestep)
        now, after = self._scale(self.step_index), self._scale(self.step_index + 1)
        self.is_scale_input_called = True  # the pipeline's latents are the scaled input
        out = super().step(model_output, timestep, sample * now.to(sample.device, sample.dtype), *args, **kwargs)
        prev = out.prev_sample / after.to(sample.device, sample.dtype)
        return EulerDiscreteSchedulerOutput(prev, out.pred_original_sample) if return_dict else (prev,)

    def add_noise(self, original_samples, noise, timesteps):
        """Image→image's start: the Euler noise level, at the UNet's scale."""
        schedule = self.timesteps.to(original_samples.device)
        indices = [self.index_for_timestep(t, schedule) for t in timesteps.to(original_samples.device)]
        sigma = self.sigmas[indices].to(original_samples.device, original_samples.dtype).view(-1, 1, 1, 1)
        return (original_samples + noise * sigma) / (sigma**2 + 1) ** 0.5


class UniPCScheduler(UniPCMultistepScheduler):
    """UniPC that takes the `generator` the 2.2 pipelines pass to every `step` (UniPC draws no noise)."""

    def step(self, model_output, timestep, sample, generator=None, return_dict: bool = True):
        return super().step(model_output, timestep, sample, return_dict=return_dict)


CLASSES = dict(zip(SAMPLERS, (DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler, UniPCScheduler, VPEulerScheduler)))
# The names other tools (AUTOMATIC1111's "Sampler:" field) give them.
LABELS = SAMPLER_LABELS


def build(name: str, loaded):
    """A new scheduler of kind `name` with the config of `loaded` (the model's own decoder scheduler)."""
    if name not in CLASSES:
        raise SettingsError(f"sampler must be one of {SAMPLERS}, got {name!r}")
    if type(loaded) is CLASSES[name]:
        return loaded  # the model's own scheduler object, as the model card uses it
    return CLASSES[name].from_config(loaded.config)
