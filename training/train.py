"""Train the nano model in eight stages and save it as Kandinsky 2.2 pipeline folders.

    python -m training.train --out kandinsky_lab/models/nano          # full run, ~130 min on 2 CPU cores
    python -m training.train --out kandinsky_lab/models/nano --resume kandinsky_lab/models/nano
                                                                      # only the stages the folder lacks
    python -m training.train --out /tmp/nano --preset smoke           # seconds: every stage, tiny counts

Stages, each on frozen results of the ones before: MoVQ (movq.py) → CLIP towers (clip.py) →
prior (prior.py) → UNet decoder (decoder.py) → MoVQ's decoder alone, longer (movq.py; the encoder,
and so the UNet's latents, stay fixed) → the inpainting UNet, the decoder's widened to 9 input
channels (inpaint.py) → a depth estimator, a tiny GLPN (depth.py) → the depth ControlNet UNet, the
decoder's given a hint, conditioned on pictures' and the prior's embeddings (controlnet.py). `--resume FOLDER` continues a run that stopped between
stages. Seeded: the same preset on the same torch version and thread count gives the same weights.
Writes prior/, decoder/, decoder-inpaint/unet/, controlnet-depth/unet/ and depth/ exactly as
`save_pretrained` does (safetensors; the task folders hold only their UNet: the Kit shares the
decoder's MoVQ and scheduler; depth/ loads with transformers' depth-estimation pipeline), kandinsky_lab.json (default size 64 and the training summary) and training_log.jsonl.
After a new ControlNet stage, guidance.py chooses the decoder guidance it draws best with (~18 min, not in the
summary's minutes) and adds it to kandinsky_lab.json.
"""

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import torch
from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline, UNet2DConditionModel

from kandinsky_lab import world

from . import clip, controlnet, data, decoder, depth, guidance, inpaint, model, movq, prior
from . import tokenizer as nano_tokenizer
from .log import Log

PRESETS = {  # steps and batch size per stage; `pictures` rendered once for all stages; `guidance`: guidance.py's cases
    "full": {"pictures": 12_000, "movq": (400, 16), "clip": (2400, 96), "prior": (1000, 64), "decoder": (6800, 32), "movq_decoder": (800, 16), "inpaint": (3000, 32), "depth": (1800, 32), "controlnet": (8000, 16), "guidance": 330},
    "smoke": {"pictures": 64, "movq": (2, 4), "clip": (2, 8), "prior": (2, 8), "decoder": (2, 4), "movq_decoder": (2, 4), "inpaint": (2, 4), "depth": (2, 4), "controlnet": (2, 4), "guidance": 2},
}
SEED = 0
INPAINT = "decoder-inpaint"  # as the real model's repository: kandinsky-community/kandinsky-2-2-decoder-inpaint
CONTROLNET = "controlnet-depth"  # kandinsky-community/kandinsky-2-2-controlnet-depth
DEPTH = "depth"  # the depth estimator (the guide uses Intel/dpt-large)


def main(out: Path, preset: str, seed: int = SEED, resume: Path | None = None) -> dict:
    """Run every stage, or with `resume` (a folder a run of the same preset saved) only the stages
    that folder's log does not have, starting from its weights."""
    plan = PRESETS[preset]
    out.mkdir(parents=True, exist_ok=True)
    done_before = _stages_done(resume) if resume is not None else set()
    if resume is not None and resume.resolve() != out.resolve():
        shutil.copy(resume / "training_log.jsonl", out / "training_log.jsonl")
    elif resume is None:
        (out / "training_log.jsonl").unlink(missing_ok=True)
    log = Log(out / "training_log.jsonl", every=50 if preset == "full" else 1)
    random.seed(seed)
    torch.manual_seed(seed)
    started = time.monotonic()
    pictures = data.build(plan["pictures"], seed)
    if resume is None:
        prior_pipe, decoder_pipe = model.build_prior(), model.build_decoder()
    else:
        prior_pipe = KandinskyV22PriorPipeline.from_pretrained(resume / "prior", use_safetensors=True)
        decoder_pipe = KandinskyV22Pipeline.from_pretrained(resume / "decoder", use_safetensors=True)
        for module in (*prior_pipe.components.values(), *decoder_pipe.components.values()):
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(True)

    if "movq" not in done_before:
        movq.train(decoder_pipe.movq, pictures, *plan["movq"], seed=seed + 1, log=log)
    if "clip" not in done_before:
        clip.train(prior_pipe, pictures, *plan["clip"], seed=seed + 2, log=log)
    embeddings = clip.image_embeddings(prior_pipe.image_encoder, pictures)
    if "prior" not in done_before:
        prior.train(prior_pipe, pictures, embeddings, *plan["prior"], seed=seed + 3, log=log)
    latents = decoder.encode_all(decoder_pipe.movq, pictures)
    if "decoder" not in done_before:
        zero = clip.zero_embedding(prior_pipe.image_encoder)
        decoder.train(decoder_pipe.unet, decoder_pipe.scheduler, latents, embeddings, zero, *plan["decoder"], seed=seed + 4, log=log)
    if "movq_decoder" not in done_before:
        movq.refine_decoder(decoder_pipe.movq, pictures, latents, *plan["movq_decoder"], seed=seed + 5, log=log)
    if "inpaint" not in done_before:
        inpaint_unet = inpaint.widen(decoder_pipe.unet)
        zero = clip.zero_embedding(prior_pipe.image_encoder)
        inpaint.train(inpaint_unet, decoder_pipe.scheduler, pictures.scenes, latents, embeddings, zero, *plan["inpaint"], seed=seed + 6, log=log)
    else:
        inpaint_unet = UNet2DConditionModel.from_pretrained(resume / INPAINT, subfolder="unet", use_safetensors=True)
    if "depth" not in done_before:
        torch.manual_seed(seed + 7)  # its own start, whichever stages ran before it in this process
        depth_model, depth_processor = depth.build()
        depth.train(depth_model, pictures, *plan["depth"], seed=seed + 7, log=log)
        depth.save(depth_model, depth_processor, out / DEPTH)
    elif resume.resolve() != out.resolve():
        shutil.copytree(resume / DEPTH, out / DEPTH, dirs_exist_ok=True)
    if "controlnet" not in done_before:
        control_unet = controlnet.widen(decoder_pipe.unet)
        zero = clip.zero_embedding(prior_pipe.image_encoder)
        estimated = controlnet.estimated_hints(depth.pipeline(out / DEPTH), pictures, latents.shape[-1])
        prior_pipe.set_progress_bar_config(disable=True)  # four runs of 500 captions: no bars in the training output
        from_prior = controlnet.prior_embeddings(prior_pipe, pictures, seed=seed + 9)
        controlnet.train(control_unet, decoder_pipe.scheduler, pictures, latents, embeddings, zero, *plan["controlnet"], seed=seed + 8, log=log, estimated=estimated, from_prior=from_prior)
    else:
        control_unet = UNet2DConditionModel.from_pretrained(resume / CONTROLNET, subfolder="unet", use_safetensors=True)

    prior_pipe.save_pretrained(out / "prior", safe_serialization=True)
    decoder_pipe.save_pretrained(out / "decoder", safe_serialization=True)
    inpaint_unet.save_pretrained(out / INPAINT / "unet", safe_serialization=True)
    control_unet.save_pretrained(out / CONTROLNET / "unet", safe_serialization=True)
    portable(out / "prior", prior_pipe.tokenizer)
    summary = {
        "default_size": world.SIDE,
        "trained_size": world.SIDE,  # with the vocabulary: what knowledge.py's notes compare prompts and sizes with
        "vocabulary": world.vocabulary(),
        "preset": preset,
        "seed": seed,
        "plan": plan,
        "minutes": round((time.monotonic() - started) / 60 + (_previous(resume, "minutes") if resume else 0), 1),
        "resumed_after": sorted(done_before),
        "stage_seconds": (_previous(resume, "stage_seconds") if resume else {}) | log.stage_seconds(),
        "final_losses": (_previous(resume, "final_losses") if resume else {})
        | {r["stage"]: {k: v for k, v in r.items() if k not in ("stage", "step", "of", "s")} for r in log.records},
        "latent_mean": round(latents.mean().item(), 3),
        "latent_std": round(latents.std().item(), 3),
        "parameters": {name: model.count(module) for name, module in {**prior_pipe.components, **decoder_pipe.components}.items() if isinstance(module, torch.nn.Module)}
        | {"inpaint_unet": model.count(inpaint_unet), "controlnet_unet": model.count(control_unet)},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if "controlnet" in done_before:  # the ControlNet kept, and so the guidance chosen for it, if it was
        summary |= {k: v for k, v in json.loads((resume / "kandinsky_lab.json").read_text()).items() if k in guidance.WRITES}
    (out / "kandinsky_lab.json").write_text(json.dumps(summary, indent=1) + "\n")
    if "guidance_scale" not in summary:  # a new ControlNet, or a run stopped before its guidance was chosen
        summary |= guidance.choose(out, plan["guidance"])  # reads the folder just saved, adds to its kandinsky_lab.json
    print(f"saved to {out} in {summary['minutes']} min", flush=True)
    return summary


def _stages_done(folder: Path) -> set[str]:
    return {json.loads(line)["stage"] for line in (folder / "training_log.jsonl").read_text().splitlines()}


def _previous(folder: Path, key: str):
    """A figure from the summary of the run being resumed."""
    return json.loads((folder / "kandinsky_lab.json").read_text())[key]


def portable(prior_folder: Path, tokenizer) -> None:
    """Make the prior folder load with transformers 4.x too, as the hub's folders do.

    transformers 5 without torchvision saves the image processor as CLIPImageProcessorPil (a class 4.x
    lacks) and the tokenizer only as tokenizer.json; name the processor CLIPImageProcessor, as the
    real model does, and add the vocab.json + merges.txt the slow tokenizer reads.
    """
    index_file = prior_folder / "model_index.json"
    index = json.loads(index_file.read_text())
    index["image_processor"] = ["transformers", "CLIPImageProcessor"]
    index_file.write_text(json.dumps(index, indent=2) + "\n")
    nano_tokenizer.save_vocab(tokenizer, prior_folder / "tokenizer")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--resume", type=Path, help="a folder saved by an earlier run of this preset: run only its missing stages")
    arguments = parser.parse_args()
    main(arguments.out, arguments.preset, arguments.seed, arguments.resume)
