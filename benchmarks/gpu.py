"""`python -m benchmarks.gpu` (on a CUDA machine): run the GPU tests and write their figures.

Runs tests/test_gpu.py (fp16 on CUDA, the offload presets, memory.py's prediction against measured
peaks, a size refused for the free memory, a real out-of-memory) with pytest, reads the figures the
tests attach with `record_property` from the JUnit report, and writes the "gpu" section of
benchmarks/results.md (sections.py). Without CUDA it says so and writes nothing.
"""

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

from benchmarks import sections

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


def section(outcomes: dict[str, str], figures: dict[str, str]) -> list[str]:
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
    ]


def main() -> None:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured, benchmarks/results.md left as it is")
        return
    lines = section(*run_tests())
    sections.write("gpu", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
