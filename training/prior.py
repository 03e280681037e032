"""Stage 3: the diffusion prior, text embedding → CLIP image embedding, trained as unCLIP's prior is.

The PriorTransformer denoises a *normalised* image embedding and predicts the clean one directly
(UnCLIPScheduler, prediction_type="sample"); the pipeline un-normalises its output with the prior's
`clip_mean` / `clip_std`. Those two are set from the training pictures' embeddings and kept out of
the optimizer. Captions are dropped to "" one time in ten, so the pipeline's classifier-free
guidance (negative prompt "") has an unconditional prediction to push away from.
"""

import random

import torch
import torch.nn.functional as F

from .clip import encode_text
from .log import Log
from .schedule import warmup_cosine

CAPTION_DROPOUT = 0.1


class TextCache(dict):
    """Text-encoder outputs per caption (the encoder is frozen here, and captions repeat)."""

    def __init__(self, prior_pipe):
        super().__init__()
        self.pipe = prior_pipe

    @torch.no_grad()
    def __missing__(self, caption: str):
        self[caption] = encode_text(self.pipe.tokenizer, self.pipe.text_encoder, [caption])
        return self[caption]


def train(prior_pipe, data, embeddings: torch.Tensor, steps: int, batch: int, seed: int, log: Log) -> None:
    prior, scheduler = prior_pipe.prior, prior_pipe.scheduler
    generator, rng = torch.Generator().manual_seed(seed), random.Random(seed)
    with torch.no_grad():
        prior.clip_mean.copy_(embeddings.mean(0, keepdim=True))
        prior.clip_std.copy_(embeddings.std(0, keepdim=True))
    text = TextCache(prior_pipe)
    normalised = (embeddings - prior.clip_mean.detach()) / prior.clip_std.detach()
    alphas = scheduler.alphas_cumprod
    parameters = [p for name, p in prior.named_parameters() if name not in ("clip_mean", "clip_std")]
    optimizer = torch.optim.AdamW(parameters, lr=5e-4, weight_decay=0.01)
    schedule = warmup_cosine(optimizer, steps, 0.05)
    prior.train()
    for step in range(steps):
        index = torch.randint(len(data), (batch,), generator=generator)
        captions = ["" if rng.random() < CAPTION_DROPOUT else text for text in data.captions(index, rng)]
        text_embeds, hidden, mask = (torch.cat(parts) for parts in zip(*(text[c] for c in captions)))
        target = normalised[index]
        t = torch.randint(0, len(alphas), (batch,), generator=generator)
        noise = torch.randn(target.shape, generator=generator)
        a = alphas[t].unsqueeze(1)
        noisy = a.sqrt() * target + (1 - a).sqrt() * noise
        predicted = prior(noisy, timestep=t, proj_embedding=text_embeds, encoder_hidden_states=hidden, attention_mask=mask).predicted_image_embedding
        loss = F.mse_loss(predicted, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        log.step("prior", step, steps, loss=loss.item())
    prior.eval()
