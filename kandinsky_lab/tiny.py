"""The "tiny" offline model: Kandinsky 2.2's exact component classes at toy sizes, random weights.

It is built in-process in a fraction of a second, with a tokenizer made on the spot (no download), so
every code path of the kit (loading, the three tasks, saving with `save_pretrained`) can run and be
tested on a laptop CPU with no network. Its pictures are noise: it exists to test plumbing, not to
look at. The components mirror the ones in diffusers' own fast tests for Kandinsky 2.2.

    prior side:   CLIPTokenizer, CLIPTextModelWithProjection, CLIPVisionModelWithProjection,
                  CLIPImageProcessor, PriorTransformer, UnCLIPScheduler
    decoder side: UNet2DConditionModel (image-embedding conditioned), DDPMScheduler, VQModel (MoVQ)
"""

import json
import tempfile
from pathlib import Path

import torch
from diffusers import (
    DDPMScheduler,
    KandinskyV22Pipeline,
    KandinskyV22PriorPipeline,
    PriorTransformer,
    UNet2DConditionModel,
    UnCLIPScheduler,
    VQModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

try:  # transformers >= 5 without torchvision: the PIL processor, named so no fallback warning is printed
    from transformers import CLIPImageProcessorPil as CLIPImageProcessor
except ImportError:
    from transformers import CLIPImageProcessor

EMBED_DIM = 32  # CLIP projection size = prior embedding size = UNet image-embedding size
MAX_TOKENS = 77  # tokenizer model_max_length = text positions = prior num_embeddings, as in the real model
CLIP_IMAGE_SIZE = 224  # what the real CLIP image encoder sees; kept so the image path is the same
SEED = 0  # the random weights are seeded, so "tiny" is the same model in every process


def _byte_chars() -> list[str]:
    """CLIP's byte-to-unicode table: 256 printable characters, one per byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def build_tokenizer(model_max_length: int = MAX_TOKENS) -> CLIPTokenizer:
    """A byte-level CLIP tokenizer with no merges: every word is spelled out character by character."""
    chars = _byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        (folder / "merges.txt").write_text("#version: 0.2\n")
        (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": model_max_length}))
        return CLIPTokenizer.from_pretrained(folder)


def build_prior(
    dim: int = EMBED_DIM, text_layers: int = 2, vision_hidden: int = EMBED_DIM, vision_layers: int = 2, prior_layers: int = 1
) -> KandinskyV22PriorPipeline:
    """The prior side: text encoder, image encoder and the PriorTransformer that maps one to the other.

    `dim` is the shared embedding size (1280 in the real model); the defaults make "tiny".
    """
    tokenizer = build_tokenizer()
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=dim,
            projection_dim=dim,
            intermediate_size=37 if dim == EMBED_DIM else 4 * dim,
            num_attention_heads=4,
            num_hidden_layers=text_layers,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=vision_hidden,
            projection_dim=dim,
            intermediate_size=37 if vision_hidden == EMBED_DIM else 4 * vision_hidden,
            num_attention_heads=4,
            num_hidden_layers=vision_layers,
            image_size=CLIP_IMAGE_SIZE,
            patch_size=32,
            num_channels=3,
        )
    )
    image_processor = CLIPImageProcessor(
        crop_size=CLIP_IMAGE_SIZE,
        size=CLIP_IMAGE_SIZE,
        do_center_crop=True,
        do_normalize=True,
        do_resize=True,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        resample=3,
    )
    prior = PriorTransformer(
        num_attention_heads=2 if dim == EMBED_DIM else 8,
        attention_head_dim=12 if dim == EMBED_DIM else dim // 8,
        embedding_dim=dim,
        num_layers=prior_layers,
        num_embeddings=MAX_TOKENS,
    )
    # The real prior is trained with normalised embeddings; random clip_std of 0 would collapse outputs.
    prior.clip_std = torch.nn.Parameter(torch.ones(1, dim))
    scheduler = UnCLIPScheduler(
        variance_type="fixed_small_log",
        prediction_type="sample",
        num_train_timesteps=1000,
        clip_sample=True,
        clip_sample_range=10.0,
    )
    return KandinskyV22PriorPipeline(
        prior=prior,
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        image_processor=image_processor,
    )


def build_decoder(
    dim: int = EMBED_DIM,
    unet_channels: tuple[int, ...] = (32, 64),
    movq_channels: tuple[int, ...] = (32, 64),
    unet_head_dim: int = 4,
) -> KandinskyV22Pipeline:
    """The decoder side: a UNet conditioned on image embeddings, and MoVQ to turn latents into pixels.

    MoVQ downscales by 2 per extra entry of `movq_channels` (the real model: 4 entries, factor 8).
    """
    unet = UNet2DConditionModel(
        in_channels=4,
        out_channels=8,  # noise and learned variance; the pipeline splits them
        addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D",) + ("SimpleCrossAttnDownBlock2D",) * (len(unet_channels) - 1),
        up_block_types=("SimpleCrossAttnUpBlock2D",) * (len(unet_channels) - 1) + ("ResnetUpsampleBlock2D",),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=unet_channels,
        layers_per_block=1,
        encoder_hid_dim=dim,
        encoder_hid_dim_type="image_proj",
        cross_attention_dim=dim,
        attention_head_dim=unet_head_dim,
        resnet_time_scale_shift="scale_shift",
        class_embed_type=None,
    )
    movq = VQModel(
        block_out_channels=list(movq_channels),
        down_block_types=["DownEncoderBlock2D"] * (len(movq_channels) - 1) + ["AttnDownEncoderBlock2D"],
        in_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        norm_type="spatial",
        num_vq_embeddings=12,
        out_channels=3,
        up_block_types=["AttnUpDecoderBlock2D"] + ["UpDecoderBlock2D"] * (len(movq_channels) - 1),
        vq_embed_dim=4,
    )
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        steps_offset=1,
        prediction_type="epsilon",
        thresholding=False,
    )
    return KandinskyV22Pipeline(unet=unet, scheduler=scheduler, movq=movq)


def build_tiny() -> tuple[KandinskyV22PriorPipeline, KandinskyV22Pipeline]:
    """Both halves of the tiny model, with seeded random weights, in float32 on the CPU."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        prior = build_prior()
        decoder = build_decoder()
    prior.set_progress_bar_config(disable=True)
    decoder.set_progress_bar_config(disable=True)
    return prior, decoder
