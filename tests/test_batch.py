"""Batch generation (kandinsky_lab/batch.py, the `kandinsky-lab batch` command) and evaluation (evaluate.py)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

import kandinsky_lab as kl
from kandinsky_lab import batch, evaluate, world

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "KANDINSKY_LAB_SOURCE": "tiny"}


def command(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "kandinsky_lab", *args], cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}, **kwargs)


def pixels(folder: Path) -> dict[str, bytes]:
    return {p.name: PIL.Image.open(p).tobytes() for p in sorted((folder / "images").glob("*.png"))}


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


# --- reading prompts and planning ----------------------------------------------------------------


def test_prompts_from_txt_csv_and_jsonl_with_per_row_settings(tmp_path):
    (tmp_path / "p.txt").write_text("a red circle\n\n# a comment\na blue square\n")
    (tmp_path / "p.csv").write_text("prompt,steps,guidance_scale,images\na red circle,7,2.5,3\na blue square,,,\n")
    (tmp_path / "p.jsonl").write_text('{"prompt": "a red circle", "steps": 7, "negative_prompt": "a star"}\n{"prompt": "a blue square"}\n')
    assert batch.read_prompts(tmp_path / "p.txt") == [{"prompt": "a red circle"}, {"prompt": "a blue square"}]
    assert batch.read_prompts(tmp_path / "p.csv") == [{"prompt": "a red circle", "steps": 7, "guidance_scale": 2.5, "images": 3}, {"prompt": "a blue square"}]
    rows = batch.read_prompts(tmp_path / "p.jsonl")
    items = batch.plan(rows, images_per_prompt=2, seed=0, steps=3)
    assert [(i.row, i.index, i.settings.steps, i.settings.negative_prompt) for i in items] == [
        (0, 0, 7, "a star"), (0, 1, 7, "a star"), (1, 0, 3, ""), (1, 1, 3, "")
    ]


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("p.csv", "prompt,stepz\na,3\n", "unknown column(s) ['stepz']"),
        ("p.csv", "prompt,steps\na,three\n", "line 2: steps must be a whole number, got 'three'"),
        ("p.jsonl", '{"prompt": ""}\n', "a non-empty prompt is required"),
        ("p.jsonl", '{"prompt": "a"\n', "line 1 is not JSON"),
        ("p.txt", "# only a comment\n", "holds no prompts"),
        ("p.md", "a\n", "must be a .txt, .csv or .jsonl file"),
    ],
)
def test_bad_prompt_files_are_refused_with_the_row(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        batch.read_prompts(tmp_path / name)


def test_seeds_depend_on_base_seed_row_and_index_only():
    rows = [{"prompt": "a"}, {"prompt": "b"}]
    two = {(i.row, i.index): i.settings.seed for i in batch.plan(rows, images_per_prompt=2, seed=5)}
    four = {(i.row, i.index): i.settings.seed for i in batch.plan(rows, images_per_prompt=4, seed=5)}
    assert all(four[key] == seed for key, seed in two.items())  # more pictures per prompt keep the first ones
    assert len(set(four.values())) == 8
    assert batch.plan(rows, seed=6)[0].settings.seed != two[(0, 0)]
    assert batch.plan([{"prompt": "a", "seed": 5}], seed=0)[0].settings.seed == two[(0, 0)]  # a row may fix its base seed


# --- running, resuming, several processes ----------------------------------------------------------


def test_batch_writes_pictures_with_settings_and_a_merged_manifest(tmp_path, kit):
    items = batch.plan([{"prompt": "a red circle"}, {"prompt": "a blue square"}], images_per_prompt=2, prior_steps=2, steps=2)
    assert batch.run(kit, items, tmp_path, progress=False) == 4
    batch.merge(tmp_path, items)
    entries = manifest(tmp_path)
    assert [(e["row"], e["index"]) for e in entries] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for entry, item in zip(entries, items):
        settings, _, _ = kl.load_settings(tmp_path / entry["file"])
        assert settings.seed == item.settings.seed == entry["seed"] and settings.prompt == entry["prompt"]
    again = kl.text_to_image(kit, items[3].settings).images[0]
    assert again.tobytes() == PIL.Image.open(tmp_path / entries[3]["file"]).tobytes()
    assert batch.run(kit, items, tmp_path, progress=False) == 0  # everything is done: nothing runs


def test_merge_refuses_an_unfinished_batch(tmp_path, kit):
    items = batch.plan([{"prompt": "a"}], images_per_prompt=2, prior_steps=2, steps=2)
    batch.run(kit, items[:1], tmp_path, progress=False)
    with pytest.raises(RuntimeError, match="1 item\\(s\\) not finished.*run the batch again"):
        batch.merge(tmp_path, items)


@pytest.mark.slow
def test_a_killed_batch_resumes_with_every_item_exactly_once(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"a {c} circle" for c in ("red", "blue", "green")) + "\n")
    out = tmp_path / "out"
    args = ["batch", str(prompts), "--out", str(out), "--images-per-prompt", "4", "--prior-steps", "10", "--steps", "40", "--no-progress"]
    run = subprocess.Popen([sys.executable, "-m", "kandinsky_lab", *args], cwd=ROOT, env={**os.environ, **ONE_THREAD}, stderr=subprocess.PIPE)
    part = out / "manifest.part-0.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not part.exists() or len(part.read_text().splitlines()) < 3):
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait()
    done_before = len(part.read_text().splitlines())
    assert 3 <= done_before < 12 and not (out / "manifest.jsonl").exists()

    finished = command(*args, env=ONE_THREAD, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    entries = manifest(out)
    assert sorted((e["row"], e["index"]) for e in entries) == [(r, i) for r in range(3) for i in range(4)]
    files = sorted((out / "images").iterdir())
    assert [p.name for p in files] == sorted(Path(e["file"]).name for e in entries)  # no partial or extra files
    for entry in entries:
        settings, _, _ = kl.load_settings(out / entry["file"])  # every file whole, with its settings
        assert settings.seed == entry["seed"]
    assert f"({12 - done_before} made by this process now)" in finished.stdout


@pytest.mark.slow
def test_two_accelerate_processes_make_the_same_pictures_as_one(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": f"a {c} square", "steps": 4 + k}) for k, c in enumerate(("red", "blue", "white"))) + "\n")
    common = ["batch", str(prompts), "--images-per-prompt", "3", "--prior-steps", "3", "--seed", "11", "--no-progress"]
    single = command(*common, "--out", str(tmp_path / "one"), env=ONE_THREAD, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533", "-m", "kandinsky_lab"]
    double = subprocess.run([*launch, *common, "--out", str(tmp_path / "two")], cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **ONE_THREAD})
    assert double.returncode == 0, double.stderr[-3000:]
    assert "(5 made by this process now)" in double.stdout  # the main process made its share: items 0, 2, 4, 6, 8 of 9
    assert len(pixels(tmp_path / "one")) == 9 and pixels(tmp_path / "one") == pixels(tmp_path / "two")
    assert manifest(tmp_path / "one") == manifest(tmp_path / "two")


# --- evaluation ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nano():
    return kl.load("nano", device="cpu")


def renders(count: int, seed: int) -> list[PIL.Image.Image]:
    rng = random.Random(seed)
    return [world.render(world.sample(rng)) for _ in range(count)]


def noisy(images, sigma: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [PIL.Image.fromarray(np.clip(np.asarray(im, float) + rng.normal(0, sigma, (64, 64, 3)), 0, 255).astype(np.uint8)) for im in images]


def test_frechet_distance_is_zero_for_a_set_against_itself_and_grows_with_noise(nano):
    images = renders(48, seed=0)
    clean = evaluate.features(nano, images)
    assert evaluate.frechet_distance(clean, clean) < 1e-6
    distances = [evaluate.frechet_distance(clean, evaluate.features(nano, noisy(images, sigma))) for sigma in (8, 32, 96)]
    assert distances[0] < distances[1] < distances[2], distances


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=generator, dtype=torch.float64)
    b = torch.randn(20000, 3, generator=generator, dtype=torch.float64) * 2 + 1
    # N(0, I) vs N(1, 4I): |mu|^2 = 3, trace term 3 * (1 + 4 - 2 * 2) = 3
    assert evaluate.frechet_distance(a, b) == pytest.approx(6.0, abs=0.15)


def test_clip_score_ranks_the_matching_prompt_first_on_nano(nano):
    rng, wins = random.Random(3), 0
    for _ in range(20):
        scene = world.sample(rng, position="center")
        other = world.sample(rng, position="center")
        while (other.shape, other.color, other.background) == (scene.shape, scene.color, scene.background):
            other = world.sample(rng, position="center")
        image = world.render(scene)
        scores = evaluate.clip_score(nano, [image, image], [world.canonical(scene), world.canonical(other)])
        wins += bool(scores[0] > scores[1])
    assert wins >= 18, wins


def test_clip_score_ranks_the_matching_prompt_first_for_a_generated_picture(nano):
    generated = kl.text_to_image(nano, kl.TextToImage(prompt="a red circle on a white background", prior_steps=25, steps=25)).images[0]
    scores = evaluate.clip_score(nano, [generated] * 2, ["a red circle on a white background", "a blue square on a yellow background"])
    assert scores[0] > scores[1]


def test_inception_features_say_clearly_what_is_missing():
    with pytest.raises(evaluate.FeaturesUnavailable, match="pytorch_fid|Inception weights"):
        evaluate.features(None, renders(2, 0), "inception")
    with pytest.raises(ValueError, match="unknown features 'dino'"):
        evaluate.features(None, renders(2, 0), "dino")


def test_eval_command_prints_the_table_and_writes_json(tmp_path, kit):
    items = batch.plan([{"prompt": "a red circle"}, {"prompt": "a blue square"}], images_per_prompt=2, prior_steps=2, steps=2)
    batch.run(kit, items, tmp_path / "gen", progress=False)
    batch.merge(tmp_path / "gen", items)
    reference = tmp_path / "ref"
    reference.mkdir()
    for k, image in enumerate(renders(4, 0)):
        image.save(reference / f"{k}.png")
    done = command("eval", str(tmp_path / "gen"), "--reference", str(reference), "--json", str(tmp_path / "e.json"), env={"KANDINSKY_LAB_SOURCE": "tiny"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| set | pictures | Fréchet distance | features | CLIP score |" in done.stdout
    figures = json.loads((tmp_path / "e.json").read_text())
    assert figures["pictures"] == 4 and figures["reference_pictures"] == 4 and figures["frechet_distance"] > 0
    assert 0 <= figures["clip_score"] <= 100
