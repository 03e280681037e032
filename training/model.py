"""The nano model's architecture: Kandinsky 2.2's exact component classes at small sizes.

    text encoder   CLIPTextModelWithProjection, 3 layers, width 128, 20 positions (captions take at most 13 tokens)
    image encoder  CLIPVisionModelWithProjection on 64×64 pictures in four 32×32 patches, 3 layers, width 128,
                   its position embeddings started as a 2-D sine-cosine grid, its attention mimetic
    prior          PriorTransformer, 4 layers, embedding size 128 (= both CLIP projections)
    decoder        UNet2DConditionModel (32, 64 channels) on 16×16×4 latents, attention in the middle block only,
                   conditioned on the image embedding as in 2.2
                   (addition_embed_type="image", encoder_hid_dim_type="image_proj"), out_channels=8
    MoVQ           VQModel with spatial norm, 64×64×3 ↔ 16×16×4
    schedulers     UnCLIPScheduler for the prior, DDPMScheduler for the decoder (linear betas as 2.2, v-prediction)
"""

import torch
from diffusers import DDPMScheduler, KandinskyV22Pipeline, KandinskyV22PriorPipeline, PriorTransformer
from diffusers import UNet2DConditionModel, UnCLIPScheduler, VQModel
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection

from kandinsky_lab.tiny import CLIPImageProcessor

from . import tokenizer as nano_tokenizer

DIM = 128
# 77 in the real model. Nano's captions take at most 13 tokens, and a shorter text makes the prior, which
# runs on every token at each of its steps, ~40 % cheaper (v5, with 77: 12 ms a step, with 16-24: 7 ms);
# longer prompts are cut, and the kit says so (embeddings.truncation_notes).
MAX_TOKENS = 20
IMAGE_SIZE = 64
PATCH = 32  # see build_prior: why the image tower reads four big patches


def build_prior() -> KandinskyV22PriorPipeline:
    tokenizer = nano_tokenizer.build(MAX_TOKENS)
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=DIM,
            projection_dim=DIM,
            intermediate_size=4 * DIM,
            num_attention_heads=4,
            num_hidden_layers=3,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    # Big patches: a transformer on small patches learns shapes slowly. Trained to name the shape
    # (supervised, batch 64), the tower with 8×8 patches was right 34 % of the time after 250 steps,
    # 16×16 patches 38 % after 300 (a small CNN: 96 % after 50); with 32×32 patches 89 % after 2000
    # steps, each 8× cheaper than with 8×8. So CLIP trains three times as many steps in less time,
    # and a linear probe reads the shape from its embeddings 80 % of the time (41 % with 8×8).
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=DIM,
            projection_dim=DIM,
            intermediate_size=4 * DIM,
            num_attention_heads=4,
            num_hidden_layers=3,
            image_size=IMAGE_SIZE,
            patch_size=PATCH,
            num_channels=3,
        )
    )
    with torch.no_grad():
        image_encoder.vision_model.embeddings.position_embedding.weight.copy_(grid_positions(IMAGE_SIZE // PATCH, DIM))
    mimetic_attention(image_encoder.vision_model.encoder.layers)
    image_processor = CLIPImageProcessor(
        crop_size=IMAGE_SIZE,
        size=IMAGE_SIZE,
        do_center_crop=True,
        do_normalize=True,
        do_resize=True,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        resample=3,
    )
    prior = PriorTransformer(
        num_attention_heads=4, attention_head_dim=DIM // 4, embedding_dim=DIM, num_layers=4, num_embeddings=MAX_TOKENS
    )
    scheduler = UnCLIPScheduler(
        variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000, clip_sample=True, clip_sample_range=10.0
    )
    return KandinskyV22PriorPipeline(
        prior=prior,
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        image_processor=image_processor,
    )


def build_decoder(unet_channels=(32, 64), layers: int = 1) -> KandinskyV22Pipeline:
    # Attention only in the middle block (8×8, self-attention beside cross-attention to the image
    # tokens, as 2.2's SimpleCrossAttn blocks do); the image embedding also reaches every ResNet
    # through the time embedding. On a 2-core CPU a picture is ~50 small UNet calls, each paying per
    # operation, not per FLOP: v5 with attention in the 8×8 down and up blocks too (4 blocks, not 1)
    # took 1.0-1.1 s a picture, ~0.1 s more than without them, and each training step 20 % longer.
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=8,  # noise and variance, as the pipeline expects; only the noise half is trained
        addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D",) * len(unet_channels),
        up_block_types=("ResnetUpsampleBlock2D",) * len(unet_channels),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=unet_channels,
        layers_per_block=layers,
        encoder_hid_dim=DIM,
        encoder_hid_dim_type="image_proj",
        cross_attention_dim=DIM,
        attention_head_dim=32,
        resnet_time_scale_shift="scale_shift",
        class_embed_type=None,
    )
    movq = VQModel(
        block_out_channels=[32, 64, 64],  # SpatialNorm groups by 32
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
        up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
        norm_type="spatial",
        num_vq_embeddings=256,
        vq_embed_dim=4,
    )
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        steps_offset=1,
        prediction_type="v_prediction",  # see decoder.py: the 2.2 weights predict the noise, nano predicts v
        thresholding=False,
    )
    return KandinskyV22Pipeline(unet=unet, scheduler=scheduler, movq=movq)


def grid_positions(grid: int, dim: int) -> torch.Tensor:
    """A 2-D sine-cosine table (as MAE starts its ViT) for the image tower's position embeddings:
    row 0 for the class token (zeros), then one row per patch, x in the first half, y in the second.

    CLIP's default start, random rows of std 0.02 beside patch embeddings of std ~0.5, leaves the tower
    blind to where things are for hundreds of steps: nano's image tower, trained from it, told an
    object's position no better than chance (and a position classifier on it did not learn in 150
    steps, with the table it did). The table stays trainable.
    """
    quarter = dim // 4
    frequencies = 1.0 / 100 ** (torch.arange(quarter) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij")
    parts = [f(c.reshape(-1, 1) * frequencies) for c in (xs, ys) for f in (torch.sin, torch.cos)]
    return torch.cat([torch.zeros(1, dim), torch.cat(parts, dim=1)])


def mimetic_attention(layers) -> None:
    """Start each attention layer the way trained vision transformers' layers look ("mimetic
    initialization", Trockman & Kolter 2023): every head's query·keyᵀ ≈ 0.7·(Z + I) and value·output
    ≈ 0.4·(Z − I), Z random with unit-scale entries / √width, factored by SVD.

    With it, nano's image tower learns shape much faster: trained to name the shape (supervised,
    batch 64) it was right 95 % of the time after 2000 steps (89 % from the default start), and
    after the CLIP stage a linear probe reads the shape from its embeddings 93 % of the time (80 %).
    Draws from torch's global generator, so it is seeded with the rest of the model.
    """
    with torch.no_grad():
        for layer in layers:
            attention = layer.self_attn
            width, size = attention.embed_dim, attention.head_dim
            for head in range(attention.num_heads):
                u, s, vt = torch.linalg.svd(0.7 * torch.randn(width, width) / width**0.5 + 0.7 * torch.eye(width))
                rows = slice(head * size, (head + 1) * size)
                attention.q_proj.weight[rows] = (u[:, :size] * s[:size].sqrt()).T
                attention.k_proj.weight[rows] = (vt[:size].T * s[:size].sqrt()).T
            u, s, vt = torch.linalg.svd(0.4 * torch.randn(width, width) / width**0.5 - 0.4 * torch.eye(width))
            attention.v_proj.weight.copy_((u * s.sqrt()).T)
            attention.out_proj.weight.copy_(vt.T * s.sqrt())


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
