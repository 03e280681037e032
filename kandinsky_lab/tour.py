"""A guided look at a loaded model: its components, their sizes, and the tensor shapes between them.

    print(architecture(kit))    # which module does what, with parameter counts
    print(shapes(kit))          # one small generation, every intermediate tensor's shape

Used by the setup-and-tour notebook; handy in any notebook to see what is loaded.
"""

import torch

from .embeddings import zero_embedding
from .errors import expect_whole
from .kit import Kit, expect_kit
from .settings import check_words
from .sizes import MAX_SIDE, check_size

ROLES = [
    ("tokenizer", "prompt -> token ids"),
    ("text_encoder", "token ids -> CLIP text embedding"),
    ("prior", "text embedding -> CLIP image embedding (diffusion)"),
    ("image_encoder", "picture -> CLIP image embedding"),
    ("unet", "noisy latents + image embedding -> noise (diffusion)"),
    ("movq", "latents <-> pixels"),
]


def _count(module) -> str:
    n = sum(p.numel() for p in module.parameters())
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"


def architecture(kit: Kit) -> str:
    """One line per component: name, class, parameters, role."""
    expect_kit(kit)
    parts = {**kit.prior.components, **kit.decoder.components}
    lines = [str(kit)]
    for name, role in ROLES:
        module = parts[name]
        size = _count(module) if isinstance(module, torch.nn.Module) else "-"
        lines.append(f"  {name:<14}{type(module).__name__:<32}{size:>9}  {role}")
    return "\n".join(lines)


@torch.no_grad()
def shapes(kit: Kit, prompt: str = "a red circle", size: int | None = None) -> str:
    """Run each stage once by hand (no denoising loop) and list the shape of every tensor passed on."""
    expect_kit(kit)
    check_words("prompt", prompt)
    size = kit.default_size if size is None else expect_whole(size, "size", kit.size_multiple, MAX_SIDE)
    check_size(size, size, kit.size_multiple)
    device = kit.execution_device
    tokens = kit.prior.tokenizer(prompt, padding="max_length", max_length=kit.prior.tokenizer.model_max_length, return_tensors="pt")
    text = kit.prior.text_encoder(tokens.input_ids.to(device))
    image_embeds = kit.prior.prior.post_process_latents(torch.zeros_like(text.text_embeds))
    factor = 2 ** (len(kit.decoder.movq.config.block_out_channels) - 1)
    latents = torch.zeros(1, kit.decoder.unet.config.in_channels, size // factor, size // factor, device=device, dtype=kit.dtype)
    negative = zero_embedding(kit, 1)
    noise = kit.decoder.unet(latents, 0, None, added_cond_kwargs={"image_embeds": negative.to(kit.dtype)}).sample
    pixels = kit.decoder.movq.decode(latents, force_not_quantize=True).sample
    rows = [
        ("token ids", tokens.input_ids),
        ("text embedding (pooled)", text.text_embeds),
        ("text hidden states", text.last_hidden_state),
        ("CLIP image embedding", image_embeds),
        ("decoder latents", latents),
        ("UNet output (noise, variance)", noise),
        ("picture (MoVQ output)", pixels),
    ]
    return "\n".join(f"{name:<30}{tuple(t.shape)}" for name, t in rows)
