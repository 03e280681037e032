"""Stage 1: the MoVQ autoencoder, 64×64×3 pictures ↔ 16×16×4 latents.

The Kandinsky 2.2 pipelines decode latents without quantising them, image→image encodes without
quantising, and there is no latent scaling factor. So the decoder is trained on the encoder's raw
latents (with a little noise, so the UNet's near-misses still decode cleanly), and the latents are
kept near N(0, 1) per channel so the UNet's noise schedule fits them. The codebook is not used by
any 2.2 pipeline and is left as initialised.
"""

import torch
import torch.nn.functional as F

from .log import Log
from .schedule import warmup_cosine


def train(movq, data, steps: int, batch: int, seed: int, log: Log, crop: int = 32) -> None:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(movq.parameters(), lr=1e-3, weight_decay=0.0)
    schedule = warmup_cosine(optimizer, steps, 0.05)
    movq.train()
    for step in range(steps):
        index = torch.randint(len(data), (batch,), generator=generator)
        pixels = data.movq_batch(index)
        if step < steps * 3 // 4:  # most steps on crops (4× cheaper), the last quarter on whole pictures
            x, y = torch.randint(0, pixels.shape[-1] - crop + 1, (2,), generator=generator).tolist()
            pixels = pixels[..., y : y + crop, x : x + crop]
        latents = movq.encode(pixels).latents
        noisy = latents + 0.1 * torch.randn(latents.shape, generator=generator)
        decoded = movq.decode(noisy, force_not_quantize=True).sample
        mean, std = latents.mean(dim=(0, 2, 3)), latents.std(dim=(0, 2, 3))
        moments = (mean**2).mean() + ((std - 1) ** 2).mean()
        reconstruction = F.l1_loss(decoded, pixels) + F.mse_loss(decoded, pixels)
        loss = reconstruction + 0.05 * moments
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(movq.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        log.step("movq", step, steps, reconstruction=reconstruction.item(), moments=moments.item())
    movq.eval()


def refine_decoder(movq, data, latents: torch.Tensor, steps: int, batch: int, seed: int, log: Log, crop: int = 8) -> None:
    """Stage 5: train MoVQ's decoder alone, longer, on the frozen encoder's latents.

    The encoder (and so every latent the UNet was trained on) stays exactly as it is, which is why
    this can run after the UNet. `latents` are the encoder's, one per picture of `data`. Most steps
    decode random 8×8 latent crops (32×32 pixels), the last quarter whole pictures.
    """
    generator = torch.Generator().manual_seed(seed)
    parameters = [*movq.post_quant_conv.parameters(), *movq.decoder.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=5e-4, weight_decay=0.0)
    schedule = warmup_cosine(optimizer, steps, 0.02)
    factor = data.pixels.shape[-1] // latents.shape[-1]
    movq.train()
    for step in range(steps):
        index = torch.randint(len(data), (batch,), generator=generator)
        pixels, z = data.movq_batch(index), latents[index]
        if step < steps * 3 // 4:
            x, y = torch.randint(0, z.shape[-1] - crop + 1, (2,), generator=generator).tolist()
            z = z[..., y : y + crop, x : x + crop]
            pixels = pixels[..., y * factor : (y + crop) * factor, x * factor : (x + crop) * factor]
        noisy = z + 0.05 * torch.randn(z.shape, generator=generator)
        decoded = movq.decode(noisy, force_not_quantize=True).sample
        loss = F.l1_loss(decoded, pixels) + F.mse_loss(decoded, pixels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        log.step("movq_decoder", step, steps, reconstruction=loss.item())
    movq.eval()
