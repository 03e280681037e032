"""`python -m benchmarks.room`: one model for the room (kandinsky_lab/serve/) against a model per kernel (`make app`).

Writes the "room" section of benchmarks/results.md. In one run, for N = 1, 4, 8, 16 visitors, each a kernel
running the app page's code and pressing Generate through the widget with a new seed each time (as
`python -m benchmarks.visitors --kernels` does; ROUNDS rounds, every kernel at once):

    per kernel   today's app: each kernel loads its own copy of the model
    room         the same kernels as thin clients (KANDINSKY_LAB_SOURCE=http://…, as `make app SERVER=…`)
                 of one `python -m kandinsky_lab.serve` (1 replica; at the largest N also 2 replicas)

and reports the memory of the whole room (PSS of the kernels plus, for the room, every process of the
server's session: Ray's and the replicas'), pictures per minute, each visitor's median and slowest
seconds per picture, and the decoder calls' batch sizes. The model is nano on a CPU; on a lent GPU
(scripts/gpu_loan.sh) `--source kandinsky-2-2 --visitors 1 8 32 --no-per-kernel` gives the GPU rows.
"""

import argparse
import os
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import psutil

from benchmarks import sections
from benchmarks.visitors import ROUNDS, device_name, kernel_visit
from tests.room import RoomServer, session_processes

VISITORS = (1, 4, 8, 16)


def session_gib(sid: int) -> float:
    total = 0
    for p in session_processes(sid):
        try:
            total += p.memory_full_info().pss
        except psutil.Error:
            pass
    return total / 2**30


def replica_peak_gib(sid: int) -> float:
    """The largest peak resident memory (VmHWM) of the server's replica processes so far."""
    peaks = [0.0]
    for p in session_processes(sid):
        try:
            if "Replica" in p.name() or any("Replica" in part for part in p.cmdline()):
                status = Path(f"/proc/{p.pid}/status").read_text()
                peaks.append(int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 2**20)
        except (psutil.Error, OSError, StopIteration):
            pass
    return max(peaks)


def room_row(n: int, server: RoomServer, source: str) -> dict:
    import kandinsky_lab as kl

    kit = kl.load(server.address, token=server.token)
    before = len(kit.stats()["batch_sizes"])
    os.environ["KANDINSKY_LAB_SOURCE"], os.environ["KANDINSKY_LAB_TOKEN"] = server.address, server.token
    try:
        row = kernel_visit(n, also_measure=lambda: session_gib(server.sid))
    finally:
        os.environ.pop("KANDINSKY_LAB_TOKEN")
        os.environ["KANDINSKY_LAB_SOURCE"] = source
    row["batches"] = kit.stats()["batch_sizes"][before:]
    row["peak"] = replica_peak_gib(server.sid)
    return row


def batches_text(sizes: list[int]) -> str:
    if not sizes:
        return "–"
    counts = Counter(sizes)
    return f"{statistics.mean(sizes):.1f} (" + ", ".join(f"{k}×{counts[k]}" for k in sorted(counts, reverse=True)) + ")"


def table(rows: list[tuple[str, dict]]) -> list[str]:
    lines = [
        "| visitors | served by | memory of the room | a replica's peak | pictures per minute | seconds per picture (median / slowest) | rows per decoder call: mean (size × calls) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for how, r in rows:
        peak = f"{r['peak']:.2f} GiB" if "peak" in r else "–"
        lines.append(
            f"| {r['n']} | {how} | {r['memory']:.2f} GiB | {peak} | {r['per_minute']:.0f} | {r['seconds']:.1f} / {r['slowest']:.1f} s | {batches_text(r.get('batches', []))} |"
        )
    return lines


def verdict(rows: list[tuple[str, dict]], largest: int) -> list[str]:
    find = lambda how, n: next((r for h, r in rows if h == how and r["n"] == n), None)  # noqa: E731
    app16, room16, app1, room1 = find("a model per kernel", largest), find("room, 1 replica", largest), find("a model per kernel", 1), find("room, 1 replica", 1)
    if None in (app16, room16, app1, room1):
        return []
    memory, speed, alone = room16["memory"] / app16["memory"], room16["per_minute"] / app16["per_minute"], room1["seconds"] / app1["seconds"]
    return [
        "",
        "| target | measured | goal | met |",
        "| --- | --- | --- | --- |",
        f"| memory of the room at {largest} visitors, room / per kernel | {memory:.2f} × | ≤ 0.4 × | {'yes' if memory <= 0.4 else 'no'} |",
        f"| pictures per minute at {largest} visitors, room / per kernel | {speed:.2f} × | ≥ 1.2 × | {'yes' if speed >= 1.2 else 'no'} |",
        f"| a lone visitor's seconds per picture, room / per kernel | {alone:.2f} × | ≤ 1.2 × | {'yes' if alone <= 1.2 else 'no'} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, nargs="+", default=list(VISITORS))
    parser.add_argument("--source", default=os.environ.get("KANDINSKY_LAB_SOURCE", "nano"), help="the model the per-kernel app and the server load")
    parser.add_argument("--no-per-kernel", action="store_true", help="only the room (a GPU: 32 model copies do not fit)")
    parser.add_argument("--dry-run", action="store_true", help="print the section instead of writing results.md")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout's SIGTERM still stops the server (finally below)
    os.environ["KANDINSKY_LAB_SOURCE"] = args.source
    started, rows = time.monotonic(), []
    if not args.no_per_kernel:
        for n in args.visitors:
            rows.append(("a model per kernel", kernel_visit(n)))
            print(rows[-1], flush=True)
    for replicas in (1, 2):
        server = RoomServer(args.source, "--replicas", str(replicas), ip="127.0.0.1", token="benchmark")
        try:
            for n in args.visitors if replicas == 1 else [max(args.visitors)]:
                rows.append((f"room, {replicas} replica{'s' if replicas > 1 else ''}", room_row(n, server, args.source)))
                print(rows[-1], flush=True)
        finally:
            left = server.stop()
            if left:
                raise RuntimeError(f"the server left processes behind: {left}")
    seconds = time.monotonic() - started
    lines = [
        f"## One model for the room: the room's server against a model per kernel, on {device_name()}",
        "",
        f"`python -m benchmarks.room`, {seconds / 60:.1f} min. Each visitor a kernel running the app page's code, Generate pressed through "
        f"the widget in all kernels at once with a new seed each time ({ROUNDS} rounds), the app's defaults (25 prior + 50 decoder steps "
        "at the model's size). *A model per kernel* is `make app` today; in the *room* the same kernels are thin clients "
        "(`make app SERVER=…`) of one `python -m kandinsky_lab.serve` on the same machine (batches of up to 16 rows, prior and decoder; "
        "a batch waits 5 ms on an idle model, and until the model is free on a busy one; a request's decoder rows wait for the "
        "requests that arrived before them and are still at the prior). Memory is the PSS of the kernels plus, for the room, of "
        "every process of the server's session (Ray's and the replicas'), measured after the first round, between calls: the "
        "replica hands the memory a call freed back to the system after each call, and *a replica's peak* (its largest resident "
        "memory so far in the run, VmHWM: resident, not PSS) is what it held during its largest call. Seconds are measured inside each kernel from the "
        "click to the run's end.",
        "",
        *table(rows),
        *verdict(rows, max(args.visitors)),
    ]
    if args.dry_run:
        print("\n".join(lines))
    else:
        sections.write("room", lines)


if __name__ == "__main__":
    main()
