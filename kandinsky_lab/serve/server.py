"""Start and stop the room's server: Ray (bounded, no dashboard), the Replica deployment(s) and the Room.

    with Server(source="nano", port=8000) as server:   # what `python -m kandinsky_lab.serve` runs
        print(server.address, server.room_code)

The process that starts the server imports Ray only: Ray Serve, FastAPI and the model's modules are
imported by `deploy`, a one-off Ray task whose worker exits once the room is up (they were 30 MiB of a
process that only waits for Ctrl-C).
"""

import os
import secrets
from dataclasses import dataclass, field

from ..errors import SettingsError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_BATCH = 16  # rows per decoder call, unless memory.py predicts fewer fit; and prior rows per prior call
WAIT_S = 0.005  # how long the first row of a batch waits for others on an idle model (see replica.py)


@dataclass
class Server:
    source: str | None = None  # what the replicas load (kl.load's sources, or "module:function")
    host: str = "127.0.0.1"
    port: int = 8000
    room_code: str | None = None  # None: a random one
    replicas: int = 1
    gpus_per_replica: float | None = None  # None: 1 where the machine has a CUDA GPU, else 0
    cpus: int | None = None  # CPUs Ray may use (None: all of this machine's)
    max_batch: int = MAX_BATCH
    wait_s: float = WAIT_S
    limits: dict = field(default_factory=dict)  # wire.Limits fields
    per_visitor: int = 3
    object_store_bytes: int = 100 * 2**20
    ray_address: str | None = None  # a running Ray cluster ("auto", or host:port of `ray start --head`); None: start one here

    def start(self) -> "Server":
        import ray

        self.room_code = self.room_code or secrets.token_urlsafe(6)
        cpus = self.cpus or os.cpu_count() or 1
        if not ray.is_initialized() and self.ray_address:  # the cluster's machines bring their own CPUs and GPUs
            ray.init(address=self.ray_address, log_to_driver=False, configure_logging=False)
            cpus = int(ray.cluster_resources().get("CPU", cpus))
        elif not ray.is_initialized():  # a Ray of its own ("local": never one that a `ray start` left), bounded: this machine's CPUs (or fewer), a small object store
            ray.init(address="local", num_cpus=cpus, object_store_memory=self.object_store_bytes, include_dashboard=False, log_to_driver=False, configure_logging=False)
        gpus = self.gpus_per_replica
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        have = ray.cluster_resources().get("GPU", 0)
        if gpus * self.replicas > have:
            self.stop()
            raise SettingsError(
                f"{self.replicas} replica(s) × {gpus:g} GPU(s) need {self.replicas * gpus:g} GPUs, and this Ray cluster has {have:g}: "
                "use --gpus-per-replica 0 on a CPU, fewer replicas, or add a machine (`ray start --address=…`)"
            )
        source = self.source or os.environ.get("KANDINSKY_LAB_SOURCE") or ("kandinsky-2-2" if gpus else "nano")
        threads = max(1, cpus // self.replicas) if not gpus else None
        replicas = {"replicas": self.replicas, "gpus": gpus, "cpus": 0 if gpus else min(1, cpus / self.replicas)}
        model = (source, self.max_batch, self.wait_s, threads, self.limits)
        room = (self.room_code, self.limits.get("bytes", 16 * 2**20), self.per_visitor)
        ray.get(ray.remote(num_cpus=0, max_calls=1)(deploy).remote(self.host, self.port, replicas, model, room))
        return self

    @property
    def address(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        import ray

        if ray.is_initialized():
            from ray import serve

            try:
                serve.shutdown()
            finally:
                ray.shutdown()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def deploy(host: str, port: int, replicas: dict, model: tuple, room: tuple) -> None:
    """Run in a Ray worker of its own (Server.start): Serve's HTTP proxy on host:port, `replicas["replicas"]`
    Replica deployments holding the model (`model`: Replica's arguments) and the Room in front (`room`: its own)."""
    from ray import serve

    from . import replica
    from .room import Room

    model_app = replica.deployment(replicas["replicas"], replicas["gpus"], replicas["cpus"]).bind(*model)
    front = serve.deployment(Room, name="Room", num_replicas=1, max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
    serve.start(http_options={"host": host, "port": port}, logging_config={"log_level": "WARNING"})
    serve.run(front.bind(model_app, *room), name="kandinsky-lab", route_prefix="/", blocking=False)
