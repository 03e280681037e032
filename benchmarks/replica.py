"""A real-scale Kandinsky 2.2 with seeded random weights, laid out as the official hub repositories.

Every component is built from the official repositories' configs (benchmarks/kandinsky-2-2-configs,
with their sources in SOURCES.md): UNet 1253.1 M parameters, prior 1026.2 M, CLIP text 694.7 M,
CLIP vision 1844.9 M, MoVQ 67.8 M. Such a model behaves like the real one in everything but its
pictures: tensor shapes, memory, time, file layout, loading.

    python -m benchmarks.replica --cache /tmp/hf-cache            # ~9.8 GB of float16 weights
    HF_HUB_CACHE=/tmp/hf-cache HF_HUB_OFFLINE=1 python -c "import kandinsky_lab as kl; kl.load('kandinsky-2-2')"

How: modules are created with empty weights (accelerate's `init_empty_weights`, no memory touched),
then each parameter is made directly in float16 on the target device and filled from a seeded
generator (uniform, with the variance of a 1/sqrt(fan-in) initialisation; norms start at 1, biases
at 0). Each repository folder gets the official config files verbatim, the weights under the
official file names, and a CLIP tokenizer built locally (byte-level, 77 positions: the text encoder's
49 408-row embedding comes from its config). `image_encoder_format="bin"` stores the image encoder as
the hub does since July 2023 (a pickled `pytorch_model.bin` in float16), "safetensors" as
`model.safetensors`. hub_cache.py then files both folders under the official ids.

`extras=True` also files what notebooks 07 and 08 load on first use: the inpainting and ControlNet-depth
UNets (1253.1 M each, their repositories' model_index.json and unet/ only: the kit shares the decoder's
MoVQ and scheduler) and the ControlNet guide's depth estimator, Intel/dpt-large (343.0 M, kept in float32
as the kit runs it; config from transformers' DPT conversion script, SOURCES.md).
"""

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import PriorTransformer, UNet2DConditionModel, VQModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection, DPTConfig, DPTForDepthEstimation

from benchmarks import hub_cache
from kandinsky_lab.depth import REAL_ESTIMATOR
from kandinsky_lab.extras import TASKS
from kandinsky_lab.loading import HUB_DECODER, HUB_PRIOR
from kandinsky_lab.tiny import build_tokenizer

CONFIGS = Path(__file__).resolve().parent / "kandinsky-2-2-configs"
# Published sizes, independent of the configs: the official weight files' sizes on the hub (SOURCES.md)
# divided by the bytes per parameter (float32: 4; the image encoder is stored in float16: 2). The hub
# shows three significant figures, so these are good to about 0.2 %.
PUBLISHED = {
    "prior": 4.11e9 / 4,  # prior/diffusion_pytorch_model.bin, 4.11 GB
    "text_encoder": 2.78e9 / 4,  # text_encoder/model.safetensors, 2.78 GB
    "image_encoder": 3.69e9 / 2,  # image_encoder/pytorch_model.bin, 3.69 GB in float16
    "unet": 5.01e9 / 4,  # unet/diffusion_pytorch_model.bin, 5.01 GB
    "movq": 271e6 / 4,  # movq/diffusion_pytorch_model.bin, 271 MB
}
# (repository side, component folder, config file in CONFIGS, class, weight file name)
MODELS = [
    ("prior", "prior", "prior_prior.json", PriorTransformer, "diffusion_pytorch_model.safetensors"),
    ("prior", "text_encoder", "prior_text_encoder.json", CLIPTextModelWithProjection, "model.safetensors"),
    ("prior", "image_encoder", "prior_image_encoder.json", CLIPVisionModelWithProjection, "model.safetensors"),
    ("decoder", "unet", "decoder_unet.json", UNet2DConditionModel, "diffusion_pytorch_model.safetensors"),
    ("decoder", "movq", "decoder_movq.json", VQModel, "diffusion_pytorch_model.safetensors"),
]
# Config files copied verbatim: (side, path in the repository, file in CONFIGS)
FILES = [
    ("prior", "model_index.json", "prior_model_index.json"),
    ("prior", "scheduler/scheduler_config.json", "prior_scheduler.json"),
    ("prior", "image_processor/preprocessor_config.json", "prior_image_processor.json"),
    ("prior", "tokenizer/tokenizer_config.json", "prior_tokenizer_config.json"),
    ("decoder", "model_index.json", "decoder_model_index.json"),
    ("decoder", "scheduler/scheduler_config.json", "decoder_scheduler.json"),
]
# What notebooks 07 and 08 load on first use: (repository, component folder or "", config file, class, weights, dtype)
EXTRAS = [
    (TASKS["inpaint"][1], "unet", "decoder_inpaint_unet.json", UNet2DConditionModel, "diffusion_pytorch_model.safetensors", torch.float16),
    (TASKS["controlnet"][1], "unet", "controlnet_depth_unet.json", UNet2DConditionModel, "diffusion_pytorch_model.safetensors", torch.float16),
    (REAL_ESTIMATOR, "", "dpt_large.json", DPTForDepthEstimation, "model.safetensors", torch.float32),
]
EXTRA_PIPELINES = {repo: cls.__name__ for _, repo, cls in TASKS.values()}  # a pipeline repository's model_index.json class
CONFIG_CLASSES = {CLIPTextModelWithProjection: CLIPTextConfig, CLIPVisionModelWithProjection: CLIPVisionConfig, DPTForDepthEstimation: DPTConfig}


def config(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def empty_model(cls, config_file: str) -> torch.nn.Module:
    """The module with every parameter on the meta device (buffers are real: position ids, masks)."""
    values = config(config_file)
    with init_empty_weights(include_buffers=False):
        if cls in CONFIG_CLASSES:
            return cls(CONFIG_CLASSES[cls].from_dict(values))
        return cls.from_config(values)


def count(cls, config_file: str) -> int:
    return sum(p.numel() for p in empty_model(cls, config_file).parameters())


@torch.no_grad()
def materialise(model: torch.nn.Module, generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """Give every meta parameter seeded random values, made directly in `dtype` on `device`."""
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            value = torch.empty(param.shape, dtype=dtype, device=device)
            if name.endswith("bias"):
                value.zero_()
            elif param.dim() <= 1:
                value.fill_(1.0)  # norm scales, clip_std, logit scale
            else:
                bound = math.sqrt(3.0 / max(1, param[0].numel()))  # uniform with variance 1 / fan-in
                value.uniform_(-bound, bound, generator=generator)
            module._parameters[name] = torch.nn.Parameter(value, requires_grad=False)
    for buffer_name, buffer in model.named_buffers():
        owner = model.get_submodule(buffer_name.rpartition(".")[0]) if "." in buffer_name else model
        owner._buffers[buffer_name.rpartition(".")[2]] = buffer.to(device)
    if isinstance(model, PriorTransformer):
        model.clip_mean.zero_()  # embeddings leave the prior as (x * clip_std + clip_mean)
    return model


def write_weights(model: torch.nn.Module, path: Path) -> int:
    """Write the state dict under the hub's file name; returns bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".bin":
        torch.save(state, path)
    else:
        save_file(state, path, metadata={"format": "pt"})
    return path.stat().st_size


def write_tokenizer(folder: Path) -> None:
    """A locally built byte-level CLIP tokenizer (77 positions) under the official tokenizer config."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(build_tokenizer(model_max_length=77).get_vocab()))
    (folder / "merges.txt").write_text("#version: 0.2\n")  # no merges: every word spelled out in bytes


def build(out: str | Path, device: str = "cpu", image_encoder_format: str = "safetensors", seed: int = 0, log=print) -> dict:
    """Write prior/ and decoder/ under `out` in the hub's layout; returns figures (counts, bytes, seconds)."""
    if image_encoder_format not in ("safetensors", "bin"):
        raise ValueError(f"image_encoder_format must be 'safetensors' or 'bin', got {image_encoder_format!r}")
    out, device = Path(out), torch.device(device)
    generator = torch.Generator(device).manual_seed(seed)
    figures = {"params": {}, "bytes": {}, "seconds": {}}
    for side, name, config_file, cls, weights in MODELS:
        start = time.perf_counter()
        model = materialise(empty_model(cls, config_file), generator, device, torch.float16)
        figures["params"][name] = sum(p.numel() for p in model.parameters())
        if name == "image_encoder" and image_encoder_format == "bin":
            weights = "pytorch_model.bin"
        folder = out / side / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text((CONFIGS / config_file).read_text())
        figures["bytes"][name] = write_weights(model, folder / weights)
        del model
        figures["seconds"][name] = time.perf_counter() - start
        log(f"{side}/{name}: {figures['params'][name] / 1e6:.1f} M parameters, {figures['bytes'][name] / 1e9:.2f} GB, {figures['seconds'][name]:.1f} s")
    for side, path, source in FILES:
        (out / side / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CONFIGS / source, out / side / path)
    write_tokenizer(out / "prior" / "tokenizer")
    return figures


def build_extras(out: str | Path, device: str = "cpu", seed: int = 1, log=print) -> dict:
    """Write the EXTRAS repositories under `out`, one folder per repository id; returns figures."""
    out, device = Path(out), torch.device(device)
    generator = torch.Generator(device).manual_seed(seed)
    decoder_index = config("decoder_model_index.json")
    figures = {"params": {}, "bytes": {}, "seconds": {}}
    for repo, component, config_file, cls, weights, dtype in EXTRAS:
        start = time.perf_counter()
        model = materialise(empty_model(cls, config_file), generator, device, dtype)
        folder = out / repo / component
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text((CONFIGS / config_file).read_text())
        if repo in EXTRA_PIPELINES:  # a pipeline repository: its model_index.json lists the UNet
            (out / repo / "model_index.json").write_text(json.dumps(decoder_index | {"_class_name": EXTRA_PIPELINES[repo]}, indent=2))
        else:
            shutil.copyfile(CONFIGS / "dpt_large_preprocessor.json", folder / "preprocessor_config.json")
        figures["params"][repo] = sum(p.numel() for p in model.parameters())
        figures["bytes"][repo] = write_weights(model, folder / weights)
        del model
        figures["seconds"][repo] = time.perf_counter() - start
        log(f"{repo}: {figures['params'][repo] / 1e6:.1f} M parameters, {figures['bytes'][repo] / 1e9:.2f} GB, {figures['seconds'][repo]:.1f} s")
    return figures


def build_in_cache(
    cache: str | Path, device: str = "cpu", image_encoder_format: str = "safetensors", seed: int = 0, log=print, extras: bool = False
) -> dict:
    """`build`, then file prior/ and decoder/ under the official ids in the hub cache `cache` (moved, not
    copied); with `extras`, `build_extras` too, each under its own id."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:  # same file system: blobs are moved in
        figures = build(tmp, device, image_encoder_format, seed, log)
        start = time.perf_counter()
        hub_cache.store(Path(tmp) / "prior", HUB_PRIOR, cache, move=True)
        hub_cache.store(Path(tmp) / "decoder", HUB_DECODER, cache, move=True)
        figures["seconds"]["cache"] = time.perf_counter() - start
    if extras:
        figures["extras"] = build_extras_in_cache(cache, device, log=log)
    return figures


def build_extras_in_cache(cache: str | Path, device: str = "cpu", log=print) -> dict:
    """`build_extras`, filed under each repository's id in the hub cache `cache`."""
    Path(cache).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        figures = build_extras(tmp, device, log=log)
        for repo, *_ in EXTRAS:
            hub_cache.store(Path(tmp) / repo, repo, cache, move=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="hub cache folder to write into (use as HF_HUB_CACHE)")
    parser.add_argument("--device", default="cpu", help="where the random weights are made (a GPU is faster)")
    parser.add_argument("--image-encoder-format", default="safetensors", choices=("safetensors", "bin"))
    parser.add_argument("--extras", action="store_true", help="also the inpainting and ControlNet UNets and the depth estimator (another 5.4 GB)")
    parser.add_argument("--only-extras", action="store_true", help="just those, into a cache that has the rest")
    args = parser.parse_args()
    if args.only_extras:
        print(json.dumps(build_extras_in_cache(args.cache, args.device)))
        return
    figures = build_in_cache(args.cache, args.device, args.image_encoder_format, extras=args.extras)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
