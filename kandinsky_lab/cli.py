"""The `kandinsky-lab` command: batch generation and evaluation outside a notebook.

    kandinsky-lab batch prompts.txt --out runs/a --images-per-prompt 4 --seed 0
    accelerate launch --multi_gpu --num_processes 2 -m kandinsky_lab batch prompts.txt --out runs/a
    kandinsky-lab eval runs/a --reference real-pictures/ --features clip

`batch` is resumable: run the same command again after a crash and it finishes what is missing.
Under `accelerate launch` each process takes every n-th item on its own device, and the main
process merges the manifest when all are done. `--multi_gpu` is what makes accelerate start several
processes; on a machine without CUDA they run on the CPU (gloo), one thread each. (accelerate's
`--cpu` starts a single process unless MPI is installed.) Pictures are identical however the work
is split, given the same number of threads per process. `eval` prints a table like the model card's and
writes the figures as JSON.

Exit codes: 0 done; 2 bad input (a flag, the prompt file or one of its lines, an output path, a model
source: one line on stderr saying which and why); 1 the run itself failed (out of GPU memory, a picture
could not be saved). Never a traceback for a user error.
"""

import argparse
import json
import sys
from pathlib import Path

from . import batch, evaluate
from .errors import FileFormatError, KitError, SettingsError
from .backend import is_remote, load

SETTING_FLAGS = {  # flag → TextToImage field, for defaults every row can override
    "negative_prompt": str,
    "prior_steps": int,
    "steps": int,
    "prior_guidance_scale": float,
    "guidance_scale": float,
    "height": int,
    "width": int,
}


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (exit code 2), like every other error of the command."""

    def error(self, message: str):
        self.exit(BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="kandinsky-lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = commands.add_parser("batch", help="generate pictures for a file of prompts")
    run.add_argument("prompts", type=Path, help=".txt (a prompt per line), .csv or .jsonl (a 'prompt' column plus any settings)")
    run.add_argument("--out", type=Path, required=True, help="output folder: images/, manifest.jsonl")
    run.add_argument("--images-per-prompt", type=int, default=1)
    run.add_argument("--seed", type=int, default=0, help="base seed; each picture's seed is derived from (seed, row, index)")
    run.add_argument("--source", default=None, help="model source, or a room server's http://host:port (its code in $KANDINSKY_LAB_TOKEN); default: kl.default_source()")
    run.add_argument("--no-progress", action="store_true")
    for name, kind in SETTING_FLAGS.items():
        run.add_argument("--" + name.replace("_", "-"), type=kind, default=None)

    score = commands.add_parser("eval", help="CLIP score and Fréchet distance of a batch output folder")
    score.add_argument("generated", type=Path, help="a folder written by `kandinsky-lab batch`")
    score.add_argument("--reference", type=Path, help="a folder of reference pictures for the Fréchet distance")
    score.add_argument("--features", choices=evaluate.FEATURES, default="clip")
    score.add_argument("--source", default=None, help="model whose CLIP encoders score (default: kl.default_source())")
    score.add_argument("--json", type=Path, help="also write the figures here")

    args = parser.parse_args(argv)  # argparse itself exits with 2 and one usage line on bad flags
    try:
        return _batch(args) if args.command == "batch" else _eval(args)
    except SettingsError as error:  # the input: files, lines, flags, paths, the model source
        return _fail(args.command, error, BAD_INPUT)
    except KitError as error:  # the run: out of GPU memory, pictures that could not be saved
        return _fail(args.command, error, RUN_FAILED)
    except OSError as error:  # an input or output path the system refused (permissions, a file as a folder, …)
        return _fail(args.command, f"{error.filename or ''}: {error.strerror or error}".lstrip(": "), BAD_INPUT)


BAD_INPUT, RUN_FAILED = 2, 1


def _fail(command: str, error, code: int) -> int:
    """One line on stderr (a message's later lines joined), and the exit code."""
    print(f"kandinsky-lab {command}: " + " ".join(str(error).split()), file=sys.stderr)
    return code


def _batch(args) -> int:
    import torch
    from accelerate import PartialState  # one process unless started by `accelerate launch`

    # Without CUDA, processes started by `accelerate launch --multi_gpu` talk over gloo on the CPU.
    state = PartialState(cpu=not torch.cuda.is_available())
    defaults = {k: getattr(args, k) for k in SETTING_FLAGS if getattr(args, k) is not None}
    _batch_out(args.out)
    items = batch.plan(batch.read_prompts(args.prompts), args.images_per_prompt, args.seed, **defaults)
    if state.is_main_process:
        batch.remove_partials(args.out)  # left by a killed run; no process is writing yet
    state.wait_for_everyone()
    # a room server's address: every process sends its items there (the server places the model)
    kit = load(args.source) if is_remote(args.source) else load(args.source, device=state.device)
    made = batch.run(kit, items, args.out, state.process_index, state.num_processes, progress=not args.no_progress)
    state.wait_for_everyone()
    if state.is_main_process:
        manifest = batch.merge(args.out, items)
        print(f"{len(items)} pictures in {args.out / 'images'} ({made} made by this process now), manifest: {manifest}")
    return 0


def _batch_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SettingsError(f"--out {out} is a file: give a folder for images/ and the manifest")


def _eval(args) -> int:
    manifest = args.generated / batch.MANIFEST
    if not manifest.is_file():
        raise SettingsError(f"{args.generated} has no {batch.MANIFEST}: give a folder written by `kandinsky-lab batch`")
    if args.reference is not None and not args.reference.is_dir():
        raise SettingsError(f"--reference {args.reference} is not a folder of pictures")
    try:
        entries = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FileFormatError(f"{manifest} is not a manifest written by `kandinsky-lab batch` ({error})") from None
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not isinstance(entry.get("prompt"), str):
            raise FileFormatError(f"{manifest} line {number} lacks the 'file' and 'prompt' of a picture")
    kit = load(args.source)
    images = evaluate.load_images_from(args.generated, [e["file"] for e in entries])
    row = {"name": str(args.generated), "pictures": len(images), "features": args.features}
    row["clip_score"] = float(evaluate.clip_score(kit, images, [e["prompt"] for e in entries]).mean())
    if args.reference is not None:
        reference = evaluate.load_images(args.reference)
        row["reference"], row["reference_pictures"] = str(args.reference), len(reference)
        row["frechet_distance"] = evaluate.frechet_distance(
            evaluate.features(kit, images, args.features), evaluate.features(kit, reference, args.features)
        )
    print(evaluate.table([row]))
    if args.json is not None:
        args.json.write_text(json.dumps(row, indent=1) + "\n")
    return 0
