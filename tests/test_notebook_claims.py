"""The notebooks' printed counts against what their prose says about them.

A learner reads "the sweep runs no prior" and then a printed count: the two must agree. Each count the prose
makes a claim about is printed by a checked cell (`# NBVAL_CHECK_OUTPUT`): nbval, in `make test`, proves that
the cell prints what the notebook stores, and this file reads the stored text against the prose of its section
(the markdown since the last heading). Every checked cell is either such a claim here or listed in SHOWN with
what its printout shows instead, so a new count cannot appear without someone reading it against the text.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = "# NBVAL_CHECK_OUTPUT"


def strength_steps_agree(out: str) -> bool:
    """'strength s: n of m decoder steps': the decoder runs int(m × s) of its m steps."""
    rows = re.findall(r"strength ([\d.]+): (\d+) of (\d+) decoder steps", out)
    return len(rows) >= 3 and all(int(n) == int(int(m) * float(s)) and int(n) <= int(m) for s, n, m in rows)


def hint_is_eight_latents_and_twice_the_picture(out: str) -> bool:
    """nano: 'picture: (w, h) | latents: L | hint read at: (1, 3, H, W)': H = 8 L and H = 2 × the picture's side."""
    found = re.search(r"picture: \((\d+), (\d+)\) \| latents: (\d+) \| hint read at: \(1, 3, (\d+), (\d+)\)", out)
    side, latents, hint = int(found[1]), int(found[3]), int(found[4])
    return hint == 8 * latents == 2 * side


def lerp_shorter_slerp_keeps(out: str) -> bool:
    """'t=… length vs start: lerp a  slerp b': inside the path lerp's mix is shorter, slerp's keeps the length."""
    rows = [(float(t), float(a), float(b)) for t, a, b in re.findall(r"t=([\d.]+)\s+length vs start: lerp ([\d.]+)\s+slerp ([\d.]+)", out)]
    inside = [r for r in rows if 0 < r[0] < 1]
    return len(inside) >= 3 and all(a < 0.99 and abs(b - 1) <= 0.02 for _, a, b in inside)


def prompt_takes_over(out: str) -> bool:
    """'strength s: like the picture +a, like the prompt +b': at every strength b > a."""
    rows = re.findall(r"like the picture ([+-][\d.]+), like the prompt ([+-][\d.]+)", out)
    return len(rows) >= 3 and all(float(b) > float(a) for a, b in rows)


def pasted_back_keeps_the_outside(out: str) -> bool:
    """'through MoVQ: the pixels outside the mask changed by a%' and 'pasted back: … b%': b is far below a."""
    found = dict(re.findall(r"(through MoVQ|pasted back)\s*: the pixels outside the mask changed by ([\d.]+)%", out))
    return len(found) == 2 and float(found["pasted back"]) < float(found["through MoVQ"]) / 2


def lora_grows_with_the_rank(out: str) -> bool:
    """'part: N parameters; a LoRA of rank 4 trains a (p%), rank 16 b': r × (inputs + outputs) per layer, so b = 4 a, a tiny share."""
    rows = [(int(n.replace(",", "")), int(a.replace(",", "")), int(b.replace(",", ""))) for n, a, b in re.findall(r"([\d,]+) parameters; a LoRA of rank 4 trains ([\d,]+) \([\d.]+%\), rank 16 ([\d,]+)", out)]
    return len(rows) == 2 and all(b == 4 * a and a < n / 10 for n, a, b in rows)


def files_under_two_megabytes(out: str) -> bool:
    """"{'decoder': 'n KB', 'prior': 'm KB'}": each LoRA file under 2 MB."""
    sizes = [int(k) for k in re.findall(r"'(\d+) KB'", out)]
    return len(sizes) == 2 and all(k < 2048 for k in sizes)


# (notebook, text in the checked cell's code, what its section's prose says, the stored printout agrees)
CLAIMS = [
    ("01_text_to_image.ipynb", "grid.prior_runs", r"runs no prior at all here", lambda out: out.strip() == "prior runs for the whole grid: 0"),
    ("01_text_to_image.ipynb", "result.prior_seeds", r"four images are four seeds", lambda out: "prior seeds [0, 1, 2, 3], decoder seeds [0, 1, 2, 3]" in out),
    ("02_image_to_image.ipynb", "decoder steps", r"the decoder skips the first", strength_steps_agree),
    ("06_batch_and_evaluation.ipynb", "made on a second run", r"nothing is made", lambda out: out.strip() == "made on a second run: 0"),
    ("07_inpainting.ipynb", "list(kit.extras)", r"`kit.extras` is empty", lambda out: out.strip() == "extra UNets loaded: []"),
    ("08_controlnet_and_variations.ipynb", MARK + '\nprint("extra UNets loaded:"', r"loaded the first time they are used", lambda out: out.strip() == "extra UNets loaded: []"),
    ("08_controlnet_and_variations.ipynb", "hint read at", r"8 × the latents' size.*twice it for nano", hint_is_eight_latents_and_twice_the_picture),
    ("04_inside_the_pipeline.ipynb", "same as the pipeline's picture", r"The last step is exactly the pipeline's picture", lambda out: out.strip().endswith("True")),
    ("05_playground.ipynb", "identical pixels", r"regenerate it", lambda out: out.strip() == "identical pixels: True"),
    ("03_interpolation.ipynb", "length vs start", r"the mix is shorter.*keeps the length", lerp_shorter_slerp_keeps),
    ("08_controlnet_and_variations.ipynb", "like the prompt", r"On nano the prompt takes over at every strength", prompt_takes_over),
    ("07_inpainting.ipynb", "outside the mask changed by", r"changes every pixel a little.*pastes the original back", pasted_back_keeps_the_outside),
    ("09_fine_tuning.ipynb", "lora_parameters", r"\*r\* × \(inputs \+ outputs\)", lora_grows_with_the_rank),
    ("09_fine_tuning.ipynb", "pytorch_lora_weights.safetensors').stat()", r"under 2 MB", files_under_two_megabytes),
]
# checked cells whose printout is no count the prose claims: what they show
SHOWN = {
    ("00_setup_and_tour.ipynb", "kl.shapes"): "the tensors' shapes, each row labelled; the prose names no number",
    ("04_inside_the_pipeline.ipynb", "kl.shapes"): "the same shape table",
    ("01_text_to_image.ipynb", "kl.planned_size"): "the sizes the kit will render and its refusal of 65; the prose states the rule, the printout applies it",
    ("02_image_to_image.ipynb", "will render"): "the planned size and the notes on what was done to the picture",
    ("03_interpolation.ipynb", "kl.clip_input"): "the CLIP input and embedding shapes",
    ("05_playground.ipynb", "kl.load_settings"): "the settings read back from a PNG",
    ("07_inpainting.ipynb", "one latent cell"): "a cell's size and the two coverages the pictures above show",
    ("09_fine_tuning.ipynb", "captions[:4]"): "four of the training captions, with the new word",
    ("09_fine_tuning.ipynb", "words taught"): "the run's steps, checkpoints and taught word, and the adapter folder's files",
}


def checked_cells():
    """(notebook, code, prose, stored printout) of every checked cell; the prose is its section's markdown so far
    and the markdown cell right after it (where a printout is read)."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        prose = []
        for k, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                prose = [cell.source] if cell.source.lstrip().startswith("#") else prose + [cell.source]
            elif cell.source.lstrip().startswith(MARK):
                out = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
                after = nb.cells[k + 1].source if k + 1 < len(nb.cells) and nb.cells[k + 1].cell_type == "markdown" else ""
                yield path.name, cell.source, "\n".join([*prose, after]), out


def find(notebook: str, code_text: str):
    found = [(prose, out) for name, code, prose, out in checked_cells() if name == notebook and code_text in code]
    assert len(found) == 1, f"{notebook}: {len(found)} checked cells hold {code_text!r} (the count must be printed by one checked cell)"
    return found[0]


@pytest.mark.parametrize("notebook, code_text, says, agrees", CLAIMS, ids=[f"{c[0][:2]}-{c[1][:24]}" for c in CLAIMS])
def test_the_printed_count_agrees_with_the_prose(notebook, code_text, says, agrees):
    prose, out = find(notebook, code_text)
    assert re.search(says, prose, re.S), f"{notebook}: the prose before the cell no longer says {says!r}:\n{prose}"
    assert out.strip(), f"{notebook}: the cell's printout is not stored (python scripts/notebooks.py refresh notebooks/{notebook})"
    assert agrees(out), f"{notebook}: the prose says {says!r}, the cell prints:\n{out}"


def test_every_checked_printout_is_read_against_the_prose_or_says_what_it_shows():
    known = [(n, c) for n, c, *_ in CLAIMS] + list(SHOWN)
    for name, code, _, out in checked_cells():
        matches = [k for k in known if k[0] == name and k[1] in code]
        assert matches, f"{name}: a checked cell nobody read against the prose — add it to CLAIMS or SHOWN:\n{code}\n{out}"
