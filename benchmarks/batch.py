"""`python -m benchmarks.batch`: pictures per second of `kandinsky-lab batch`, 1 process vs 2, one run.

Both on the nano model, the same PICTURES items (25 prior + 25 decoder steps, 64×64), wall time of
the whole command (start-up and model loading included), one after the other on this machine:
    1 process   `python -m kandinsky_lab batch …` with torch's default threads (one per core)
    2 processes `accelerate launch --multi_gpu --num_processes 2 -m kandinsky_lab batch …`, which
                gives each process one thread
Writes the "batch" section of benchmarks/results.md.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import sections

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [f"a {color} {shape} on a {back} background" for color, shape, back in [
    ("red", "circle", "white"), ("blue", "square", "yellow"), ("green", "triangle", "black"), ("white", "star", "purple"),
    ("orange", "circle", "blue"), ("purple", "square", "white"), ("yellow", "triangle", "green"), ("black", "star", "orange"),
]]
PER_PROMPT = 4
PICTURES = len(PROMPTS) * PER_PROMPT


def timed(command: list[str], out: Path) -> float:
    env = {**os.environ, "KANDINSKY_LAB_SOURCE": "nano"}
    start = time.perf_counter()
    subprocess.run(command + ["--out", str(out)], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
        args = ["batch", str(tmp / "prompts.txt"), "--images-per-prompt", str(PER_PROMPT), "--prior-steps", "25", "--steps", "25", "--no-progress"]
        one = timed([sys.executable, "-m", "kandinsky_lab", *args], tmp / "one")
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
        launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "kandinsky_lab"]
        two = timed([*launch, *args], tmp / "two")
    lines = [
        "## Batch generation: 1 vs 2 processes",
        "",
        f"`kandinsky-lab batch` on the nano model, {PICTURES} pictures (25 + 25 steps, 64×64), wall time of the "
        f"whole command including start-up and loading, both measured in this run on {os.cpu_count()} CPU cores "
        "(`python -m benchmarks.batch`).",
        "",
        "| processes | threads each | wall time | pictures / s |",
        "| --- | --- | --- | --- |",
        f"| 1 | {os.cpu_count()} (torch default) | {one:.1f} s | {PICTURES / one:.2f} |",
        f"| 2 (`accelerate launch --multi_gpu --num_processes 2`) | 1 | {two:.1f} s | {PICTURES / two:.2f} |",
        "",
        f"Speed-up of 2 processes over 1: **{one / two:.2f}×**.",
        "",
    ]
    sections.write("batch", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
