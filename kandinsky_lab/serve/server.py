"""Start and stop the room's server: Ray (bounded, no dashboard), the Replica deployment(s) and the Room.

    with Server(source="nano", port=8000) as server:   # what `python -m kandinsky_lab.serve` runs
        print(server.address, server.room_code)
"""

import os
import secrets
from dataclasses import dataclass, field

from ..errors import SettingsError
from . import replica as model

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Server:
    source: str | None = None  # what the replicas load (kl.load's sources, or "module:function")
    host: str = "127.0.0.1"
    port: int = 8000
    room_code: str | None = None  # None: a random one
    replicas: int = 1
    gpus_per_replica: float | None = None  # None: 1 where the machine has a CUDA GPU, else 0
    cpus: int | None = None  # CPUs Ray may use (None: all of this machine's)
    max_batch: int = model.MAX_BATCH
    wait_s: float = model.WAIT_S
    limits: dict = field(default_factory=dict)  # wire.Limits fields
    per_visitor: int = 3
    object_store_bytes: int = 100 * 2**20
    ray_address: str | None = None  # a running Ray cluster ("auto", or host:port of `ray start --head`); None: start one here

    def start(self) -> "Server":
        import ray
        from ray import serve

        from .room import Room

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
        replica = model.deployment(self.replicas, gpus, 0 if gpus else min(1, cpus / self.replicas)).bind(
            source, self.max_batch, self.wait_s, threads, self.limits
        )
        room = serve.deployment(Room, name="Room", num_replicas=1, max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
        max_bytes = self.limits.get("bytes", 16 * 2**20)
        serve.start(http_options={"host": self.host, "port": self.port}, logging_config={"log_level": "WARNING"})
        serve.run(room.bind(replica, self.room_code, max_bytes, self.per_visitor), name="kandinsky-lab", route_prefix="/", blocking=False)
        return self

    @property
    def address(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        import ray
        from ray import serve

        if ray.is_initialized():
            try:
                serve.shutdown()
            finally:
                ray.shutdown()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
