"""`python -m kandinsky_lab.serve`: serve one copy of the model to the room until Ctrl-C or SIGTERM."""

import argparse
import signal
import sys
import threading

from ..errors import KitError
from .server import LOOPBACK, MAX_BATCH, WAIT_S, Server


def network_address() -> str:
    """This machine's address on its network (what the room's laptops reach): the source address a UDP socket
    would use, found without sending anything."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kandinsky_lab.serve", description=__doc__)
    parser.add_argument("--source", default=None, help="the model (kl.load's sources); default: the real model on CUDA, nano elsewhere")
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on (0.0.0.0 serves a room)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token", default=None, help="the room code (default: a random one, printed)")
    parser.add_argument("--replicas", type=int, default=1, help="copies of the model (one per GPU)")
    parser.add_argument("--gpus-per-replica", type=float, default=None, help="default: 1 where there is a GPU, else 0")
    parser.add_argument("--cpus", type=int, default=None, help="CPUs Ray may use (default: all)")
    parser.add_argument("--max-batch", type=int, default=MAX_BATCH, help="rows per decoder call at most (memory may allow fewer)")
    parser.add_argument("--wait-ms", type=float, default=WAIT_S * 1000, help="how long a batch waits to fill")
    parser.add_argument("--ray-address", default=None, help="join a running Ray cluster (`ray start --head` printed it; 'auto' on its machines)")
    args = parser.parse_args(argv)
    server = Server(
        args.source, args.ip, args.port, args.token, args.replicas, args.gpus_per_replica, args.cpus, args.max_batch, args.wait_ms / 1000,
        ray_address=args.ray_address,
    )
    finished = threading.Event()
    try:
        server.start()
    except KitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):  # after Ray's start, which installs handlers of its own
        signal.signal(sig, lambda *_: finished.set())
    try:
        address = server.address if args.ip in LOOPBACK else f"http://{network_address()}:{args.port}"
        print(f"serving at {server.address} — room code {server.room_code}", flush=True)
        print(f'    in a notebook: kit = kl.load("{address}", token="{server.room_code}")', flush=True)
        print(f"    the app:       make app SERVER={address} SERVER_TOKEN={server.room_code}", flush=True)
        finished.wait()
    finally:
        print("stopping: shutting Ray down", flush=True)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
