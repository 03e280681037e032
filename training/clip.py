"""Stage 2: the CLIP text and image towers, trained contrastively on captions and pictures.

As in CLIP, both towers' projected embeddings are compared by cosine similarity. Because many
captions fit many pictures here ("a red circle on a blue background" fits every red circle on blue,
any size), the targets are soft: a caption's target is spread over every picture in the batch it
fits (data.matches). The text tower is trained the way the pipeline uses it: ids padded to
`model_max_length` with no attention mask, pooled at the first end-of-text token.

Batches are made of look-alikes (data.look_alike_batch): runs of pictures with the same two colors
that differ in shape, size or position (RUN_KINDS), so colors alone cannot tell a caption's pictures
apart and the towers must see shape, size and position too. With random batches two pictures rarely
share both colors; nano v2's image embeddings, trained so, carried no position at all (a linear
probe read it 20 % of the time: chance). With look-alikes and the image tower's position grid
(model.grid_positions) the probe reads position 99 % of the time; with the tower's 32×32 patches
(model.build_prior) and 2400 steps it reads shape 80 % of the time (8×8 patches, 800 steps: 41 %),
and 93 % when the tower's attention starts mimetic (model.mimetic_attention).
"""

import math
import random

import torch
import torch.nn.functional as F

from .data import matches
from .log import Log
from .schedule import warmup_cosine

LOOK_ALIKES = 8  # pictures per run of look-alikes in a batch
RUN_KINDS = (  # what the pictures of a run share; a batch has about as many runs of each kind
    ("color", "background"),  # they differ in shape, size and position
    ("color", "background", "shape"),  # size and position
    ("color", "background", "size", "position"),  # only in shape
)


def encode_text(tokenizer, text_encoder, captions: list[str], padding: str = "max_length"):
    """What KandinskyV22PriorPipeline computes for prompts: pooled projection, hidden states, mask.

    CLIP's text attention is causal, so everything up to the first end-of-text token (the pooled
    output included) is the same whether the ids are padded to 77 or only to the longest caption:
    training pads to the longest (`padding="longest"`), four times cheaper.
    """
    tokens = tokenizer(captions, padding=padding, max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt")
    output = text_encoder(tokens.input_ids)
    return output.text_embeds, output.last_hidden_state, tokens.attention_mask.bool()


def train(prior_pipe, data, steps: int, batch: int, seed: int, log: Log) -> None:
    if batch % LOOK_ALIKES:
        raise ValueError(f"the CLIP batch ({batch}) must be a multiple of LOOK_ALIKES ({LOOK_ALIKES})")
    text_encoder, image_encoder, tokenizer = prior_pipe.text_encoder, prior_pipe.image_encoder, prior_pipe.tokenizer
    generator, rng = torch.Generator().manual_seed(seed), random.Random(seed)
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    parameters = [*text_encoder.parameters(), *image_encoder.parameters(), logit_scale]
    optimizer = torch.optim.AdamW(parameters, lr=5e-4, weight_decay=0.01)
    schedule = warmup_cosine(optimizer, steps, 0.05)
    text_encoder.train()
    image_encoder.train()
    for step in range(steps):
        runs = batch // LOOK_ALIKES
        kinds = [runs // len(RUN_KINDS) + (k < runs % len(RUN_KINDS)) for k in range(len(RUN_KINDS))]
        index = torch.cat([data.look_alike_batch(n, LOOK_ALIKES, keys, generator) for n, keys in zip(kinds, RUN_KINDS) if n])
        captions = data.captions(index, rng)
        texts = F.normalize(encode_text(tokenizer, text_encoder, captions, padding="longest")[0], dim=-1)
        images = F.normalize(image_encoder(pixel_values=data.clip_batch(index)).image_embeds, dim=-1)
        logits = logit_scale.exp().clamp(max=100) * texts @ images.T
        fits = matches(captions, [data.scenes[i] for i in index.tolist()])
        loss = (
            F.cross_entropy(logits, fits / fits.sum(1, keepdim=True)) + F.cross_entropy(logits.T, (fits / fits.sum(0, keepdim=True)).T)
        ) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        top1 = fits[torch.arange(batch), logits.argmax(1)].mean()  # the best-scored picture fits the caption
        log.step("clip", step, steps, loss=loss.item(), text_to_image_top1=top1.item())
    text_encoder.eval()
    image_encoder.eval()


@torch.no_grad()
def image_embeddings(image_encoder, data, batch: int = 256) -> torch.Tensor:
    """Every training picture's image embedding (what the prior learns to predict, the UNet is fed)."""
    return torch.cat([image_encoder(pixel_values=data.clip_batch(torch.arange(i, min(i + batch, len(data))))).image_embeds for i in range(0, len(data), batch)])


@torch.no_grad()
def zero_embedding(image_encoder) -> torch.Tensor:
    """The pipelines' negative embedding: the image encoder applied to an all-zero input (get_zero_embed)."""
    size = image_encoder.config.image_size
    return image_encoder(pixel_values=torch.zeros(1, 3, size, size)).image_embeds
