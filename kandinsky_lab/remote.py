"""A kit whose model is on the room's server (serve/): every task works on it, and this kernel needs no torch.

    kit = kl.load("http://10.0.0.5:8000", token="…")      # the address and room code `make serve` printed
    result = kl.text_to_image(kit, kl.TextToImage(prompt="a red circle"))

`generate` sends the settings as JSON (wire.py) and reads the server's events as they come: progress
goes to `on_step` (events without latents; with previews="colors"/"decoded", pictures of the batch so
far), pictures arrive batch by batch (saved to `save_to` as they come), and the Result is the one a
local kit returns: the same seeds, notes, settings filled in (size, guidance) and the same pixels for
the same seeds. Stop asks the server to cancel: a queued request is removed, a running one's rows are
dropped. Refusals come back as the kit's own error classes, with the server's message.

What needs the model's modules in this kernel (notebook 04's internals, the CLIP views) says so in one line.
"""

import dataclasses
import http.client
import json
import uuid
from urllib.parse import urlparse

from . import errors, wire
from .backend import Backend
from .errors import KitError, SourceError
from .result import Result
from .steps import StepEvent, callback_failed

TIMEOUT_S = 30  # seconds without a line from the server (it sends one at least every 0.5 s)
MODEL_PARTS = (
    "prior", "decoder", "img2img", "emb2emb", "extras", "cache", "lock", "dtype", "execution_device", "memory_lines",
    "preview_colors", "depth_estimator", "sampler", "remember", "recall", "save", "shares_weights", "parameter_count",
)  # fmt: skip


class RemoteKit(Backend):
    has_latents = False
    trains_here = False

    def __init__(self, address: str, token: str | None = None, visitor: str | None = None):
        parsed = urlparse(address)
        if parsed.scheme != "http" or not parsed.hostname:
            raise SourceError(f"a room server's address looks like http://host:port, got {address!r}")
        self.address = f"http://{parsed.hostname}:{parsed.port or 80}"
        self._host, self._port = parsed.hostname, parsed.port or 80
        self.token = token
        self.visitor = visitor or uuid.uuid4().hex  # one per kit: the room serves visitors in turn
        self.said: set = set()
        self.prior_runs = 0  # prior calls the server made for this kit
        info = self._json("GET", "/v1/info")
        self.source = info["source"]
        self.default_size, self.size_multiple, self.latent_cell = info["default_size"], info["size_multiple"], info["latent_cell"]
        self.trained_size = info["trained_size"]
        self.vocabulary = None if info["vocabulary"] is None else frozenset(info["vocabulary"])
        self.guidance, self.offload, self.device = info["guidance"], info["offload"], info["device"]
        self.timing, self.limits = info["timing"], info["limits"]
        self.adapter = None  # the LoRA adapter this kit's requests draw with (load_adapter)

    def __getattr__(self, name: str):
        if name in MODEL_PARTS:
            raise KitError(f"kit.{name} needs the model in this kernel, and this kit is a client of the room's server at {self.address}: load one here with kl.load(\"nano\") to look inside")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"RemoteKit({self.address!r}, source={self.source!r}, device={self.device!r})"

    # --- HTTP -------------------------------------------------------------------------------------------
    def _headers(self) -> dict:
        headers = {"X-Visitor": self.visitor, "Content-Type": "application/json"}
        if self.token:
            headers["X-Room-Code"] = self.token
        return headers

    def _open(self, method: str, path: str, body: dict | None = None):
        connection = http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT_S)
        data = None if body is None else json.dumps(body).encode()
        try:
            connection.request(method, path, body=data, headers=self._headers())
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise SourceError(f"no room server answers at {self.address} ({error}): is `make serve` running there?") from None
        if response.status != 200:
            try:
                refused = json.loads(response.read())
            except (ValueError, OSError):
                refused = {"error": "KitError", "message": f"the server answered {response.status} {response.reason}"}
            connection.close()
            raise _error(refused)
        return connection, response

    def _json(self, method: str, path: str, body: dict | None = None) -> dict:
        connection, response = self._open(method, path, body)
        try:
            answer = json.loads(response.read())
        finally:
            connection.close()
        if isinstance(answer, dict) and answer.get("type") == "error":
            raise _error(answer)
        return answer

    # --- Backend ------------------------------------------------------------------------------------------
    def expected_seconds(self, settings, height: int, width: int, wait: bool = True) -> float | None:
        from .knowledge import run_seconds

        return None if self.timing is None else run_seconds(self.timing, settings, height, width)

    def check_fits(self, height: int, width: int, batch: int) -> None:
        """The server checks its GPU's memory when the request arrives."""

    def depth_map(self, picture):
        answer = self._json("POST", "/v1/depth", {"picture": wire.picture_to_json(picture)})
        return wire.picture_from_json(answer["depth"], "depth")

    def load_adapter(self, folder, scale: float = 1.0):
        """Send the LoRA adapter in `folder` to the room's server (checked here first, then there); every task of this
        kit then draws with it, and nobody else's does. Returns it (adapters.Adapter)."""
        from . import adapters

        scale = adapters.check_scale(scale)
        adapter = dataclasses.replace(adapters.read(folder), scale=scale)
        answer = self._json("POST", "/v1/adapters", wire.adapter_to_json(adapter))
        if answer.get("digest") != adapter.digest:
            raise KitError(f"the room's server read the adapter {adapter.name!r} as {answer.get('digest')!r}, not {adapter.digest!r}: send it again")
        self.adapter = adapter
        return adapter

    def unload_adapter(self):
        adapter, self.adapter = self.adapter, None
        return adapter

    def stats(self) -> dict:
        """The server's decoder calls so far: rows per call (how well visitors were batched)."""
        return self._json("GET", "/v1/stats")

    def generate(self, settings, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
        from .tasks.request import save_batch

        if self.adapter is not None and settings.adapter_scale is None:
            settings = dataclasses.replace(settings, adapter_scale=self.adapter.scale)
        body = {"request": wire.settings_to_json(settings), "batch_size": batch_size, "previews": previews, "events": on_step is not None}
        if self.adapter is not None:
            body["adapter"] = self.adapter.digest
        result = Result([], settings, settings.prior_seeds(), settings.decoder_seeds(), "", batch_size or 1)
        connection, response = self._open("POST", "/v1/generate", body)
        request_id, asked_stop = None, False
        try:
            while True:
                raw = response.readline()
                if not raw:
                    raise KitError(f"the room's server at {self.address} closed the connection before the run finished")
                event = json.loads(raw)
                kind = event.get("type")
                if kind == "accepted":
                    request_id = event["request"]
                elif kind == "start":
                    result.settings = dataclasses.replace(settings, **event["settings"])
                    result.model, result.batch_size = f"{self.source}", event["batch_size"]
                    result.notes = list(event["notes"])
                    result.adapter = event.get("adapter")
                    for note in result.notes:
                        if note not in self.said:
                            self.said.add(note)
                            print(note)
                elif kind == "step" and on_step is not None:
                    pictures = tuple(wire.picture_from_json(p, "preview") for p in event.get("previews", ())) or None
                    fields = {k: event[k] for k in ("stage", "step", "total", "timestep", "batch", "batches")}
                    _call(on_step, StepEvent(latents=None, previews=pictures, **fields), result)
                elif kind == "images":
                    pictures = [wire.picture_from_json(p, "picture") for p in event["images"]]
                    result.images.extend(pictures)
                    if save_to is not None:
                        save_batch(result, len(pictures), save_to)
                elif kind == "done":
                    result.interrupted = event["interrupted"]
                    self.prior_runs += event.get("prior_runs", 0)
                    return result
                elif kind == "error":
                    raise _error(event)
                if stop is not None and stop.is_set() and request_id is not None and not asked_stop:
                    asked_stop = True
                    self._json("POST", "/v1/stop", {"request": request_id})
        finally:
            connection.close()


def _call(on_step, event: StepEvent, result: Result) -> None:
    try:
        on_step(event)
    except Exception as error:  # the user's code: stop the run cleanly (closing the stream cancels it on the server)
        failed = callback_failed(error, event.stage, event.step)
        failed.result = result
        raise failed from error


def _error(answer: dict) -> KitError:
    """The kit's error class the server named (KitError for anything else), with the server's message."""
    cls = getattr(errors, str(answer.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, KitError)):
        cls = KitError
    if cls is errors.SaveError or cls is errors.CallbackError:
        cls = KitError
    return cls(str(answer.get("message", "the room's server refused the request")))


__all__ = ["RemoteKit"]
