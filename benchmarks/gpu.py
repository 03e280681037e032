"""`python -m benchmarks.gpu` (on a CUDA machine): run the GPU tests and write their figures.

Runs tests/test_gpu.py (fp16 on CUDA, the offload presets, memory.py's prediction against measured
peaks, a size refused for the free memory, a real out-of-memory, nano in fp16) with pytest, reads the
figures the tests attach with `record_property` from the JUnit report, measures the shipped nano model
in fp16 on the GPU (benchmarks/nano.py's held-out accuracy and warm one-picture time), and writes the
"gpu" section of benchmarks/results.md (sections.py). Without CUDA it says so and writes nothing.
"""

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

import kandinsky_lab as kl
from benchmarks import nano, sections

ROOT = Path(__file__).resolve().parents[1]


def run_tests() -> tuple[dict[str, str], dict[str, str]]:
    """(test name → outcome, property → value) from one pytest run of tests/test_gpu.py."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "gpu.xml"
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_gpu.py", "-o", "junit_family=legacy", f"--junitxml={report}"]
        subprocess.run(command, cwd=ROOT, check=False)
        tree = ET.parse(report)
    outcomes, figures = {}, {}
    for case in tree.iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name")] = "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
        figures |= {p.get("name"): p.get("value") for p in case.iter("property")}
    return outcomes, figures


def nano_on_gpu() -> dict:
    """nano's held-out accuracy and warm one-picture time (median of 7), in fp16 on the GPU."""
    kit = kl.load("nano")
    return nano.accuracy(kit) | {"image_s": nano.picture_seconds(kit), "dtype": str(kit.dtype).removeprefix("torch.")}


def section(outcomes: dict[str, str], figures: dict[str, str], small: dict) -> list[str]:
    passed = sum(v == "passed" for v in outcomes.values())
    mb = lambda key: figures.get(key, "–")  # noqa: E731
    return [
        "## GPU",
        "",
        f"`python -m benchmarks.gpu` on {torch.cuda.get_device_name()} (torch {torch.__version__}): tests/test_gpu.py "
        f"{passed} of {len(outcomes)} passed"
        + ("" if passed == len(outcomes) else f" (not passed: {', '.join(k for k, v in outcomes.items() if v != 'passed')})")
        + ". The ~760 MB random-weight benchmark model (benchmarks/models.py) in fp16.",
        "",
        "| offload preset | peak GPU memory, text→image + image→image at 64×64 |",
        "| --- | --- |",
        *[f"| {preset} | {mb(f'peak_gpu_mb_{preset}')} MB |" for preset in ("None", "model", "sequential")],
        "",
        "memory.py's prediction (from two small probes) against the measured extra peak of a whole text→image run:",
        "",
        "| offload | size | predicted | measured |",
        "| --- | --- | --- | --- |",
        *[
            f"| {offload} | {side}×{side} | {mb(f'{offload}_{side}_predicted_mb')} MB | {mb(f'{offload}_{side}_measured_mb')} MB |"
            for offload in ("None", "model")
            for side in (256, 512)
        ],
        "",
        f"The shipped nano model in {small['dtype']} on the GPU (`kl.load(\"nano\")`, the default there without the hub), "
        f"the nano section's {nano.PROMPTS} held-out prompts, 25 + 25 steps: color {small['color']:.1%}, background "
        f"{small['background']:.1%}, shape {small['shape']:.1%}, position {small['position']:.1%}, size {small['size']:.1%}; "
        f"one 64×64 picture {small['image_s']:.2f} s (median of 7, warm).",
        "",
    ]


def main() -> None:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured, benchmarks/results.md left as it is")
        return
    lines = section(*run_tests(), nano_on_gpu())
    sections.write("gpu", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
