"""Training log: a line per stage every few steps on stdout, and every record in a JSONL file."""

import json
import time
from pathlib import Path


class Log:
    def __init__(self, path: Path | None, every: int = 50):
        self.path, self.every, self.start = path, every, time.monotonic()
        self.stage_start: dict[str, float] = {}
        self.records: list[dict] = []

    def step(self, stage: str, step: int, steps: int, **losses: float) -> None:
        self.stage_start.setdefault(stage, time.monotonic())
        if step % self.every and step != steps - 1:
            return
        record = {"stage": stage, "step": step + 1, "of": steps, "s": round(time.monotonic() - self.start, 1)}
        record |= {k: round(v, 5) for k, v in losses.items()}
        self.records.append(record)
        print(" ".join(f"{k}={v}" for k, v in record.items()), flush=True)
        if self.path is not None:
            with self.path.open("a") as out:
                out.write(json.dumps(record) + "\n")

    def stage_seconds(self) -> dict[str, float]:
        ends = {r["stage"]: r["s"] for r in self.records}
        starts = {stage: round(t - self.start, 1) for stage, t in self.stage_start.items()}
        return {stage: round(ends[stage] - starts[stage], 1) for stage in ends}
