"""The room's front door: a Ray Serve ingress (FastAPI) that checks who asks and what, and streams the answer.

    GET  /v1/info      the model's numbers (size rule, vocabulary, …): what a client needs to plan
    POST /v1/generate  a request (wire.py) -> newline-delimited JSON events: accepted, waiting, start,
                       step, images, done | error
    POST /v1/stop      {"request": id}: cancel that request (queued: removed; running: its rows dropped)
    POST /v1/depth     {"picture": png} -> {"depth": png}
    POST /v1/adapters  a LoRA adapter (wire.adapter_to_json) -> {"digest", "name", "parts"}: checked and loaded by a
                       replica; the room keeps it (a Ray object) for every replica a request naming it reaches
    GET  /v1/stats     the decoder calls' batch sizes so far (benchmarks)

Every request needs the room code (header X-Room-Code) when the room has one, checked before anything
else is read. Requests over the limits are refused by name (413 for bytes, the settings' own errors
in the stream for the rest). Each visitor (header X-Visitor) has one request at the model at a time
and may hold `per_visitor` in all; the others wait here, in order, so visitors are served in turn and
one visitor's many pictures hold back another's by at most a batch. A visitor who disconnects has their
work cancelled; stopping ends the stream with the interrupted `done` event a local run would give.
"""

import asyncio
import hmac
import json
import uuid
from collections import defaultdict

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve

HEARTBEAT_S = 0.5  # a waiting stream says so this often (the client checks its Stop button as it reads)
PER_VISITOR = 3  # requests a visitor may hold (one at the model, the rest waiting here)
MAX_WAITING = 512  # requests the whole room may hold

app = FastAPI(title="kandinsky-lab room", docs_url=None, redoc_url=None, openapi_url=None)


def refuse(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"type": "error", "error": error, "message": message}, status_code=status)


def line(event: dict) -> bytes:
    return (json.dumps(event) + "\n").encode()


@serve.ingress(app)
class Room:
    def __init__(self, replica, room_code: str | None = None, max_bytes: int = 16 * 2**20, per_visitor: int = PER_VISITOR):
        self.replica = replica
        self.room_code = room_code
        self.max_bytes = max_bytes
        self.per_visitor = per_visitor
        self.held: dict[str, int] = defaultdict(int)  # visitor -> requests held
        self.turns: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)  # visitor -> one request at the model at a time
        self.stops: dict[str, tuple[str, asyncio.Event]] = {}  # request id -> (visitor, its stop)
        self.adapters: dict[str, object] = {}  # digest -> the adapter's JSON, put in Ray's object store

    def _refused(self, request: Request) -> JSONResponse | None:
        if self.room_code is None:
            return None
        given = request.headers.get("x-room-code", "")
        if not hmac.compare_digest(given.encode(), self.room_code.encode()):
            what = "needs the room code" if not given else "was given a wrong room code"
            return refuse(401, "SourceError", f"this room {what}: pass token=… to kl.load (the code `make serve` printed)")
        return None

    async def _admit(self, request: Request, read: bool = True):
        """The request's JSON body (None when `read` is False), or the refusal to send instead: the room code is
        checked first, then the body's length, before a byte of it is read."""
        if (refused := self._refused(request)) is not None:
            return refused
        if not read:
            return None
        size = request.headers.get("content-length")
        if size is None or not size.isdigit():
            return refuse(411, "SettingsError", "a request must say its length (Content-Length)")
        if int(size) > self.max_bytes:
            return refuse(413, "SettingsError", f"this request has {int(size):,} bytes, over this room's limit of {self.max_bytes:,} bytes")
        try:
            return json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            return refuse(400, "SettingsError", f"a request must be JSON: {str(error)[:200]}")

    @app.get("/v1/info")
    async def info(self, request: Request):
        if isinstance(refused := await self._admit(request, read=False), JSONResponse):
            return refused
        return await self.replica.info.remote()

    @app.get("/v1/stats")
    async def stats(self, request: Request):
        if isinstance(refused := await self._admit(request, read=False), JSONResponse):
            return refused
        return await self.replica.stats.remote()

    @app.post("/v1/depth")
    async def depth(self, request: Request):
        if isinstance(body := await self._admit(request), JSONResponse):
            return body
        if not isinstance(body, dict) or "picture" not in body:
            return refuse(400, "SettingsError", "a depth request must be {'picture': {'png': base64}}")
        try:
            return await self.replica.depth.remote(body["picture"])
        except Exception as error:
            return refuse(400, "SettingsError", f"the picture cannot be read: {str(error).splitlines()[-1][:200]}")

    @app.post("/v1/adapters")
    async def adapter(self, request: Request):
        if isinstance(body := await self._admit(request), JSONResponse):
            return body
        answer = await self.replica.add_adapter.remote(body)
        if answer.get("type") == "adapter" and answer["digest"] not in self.adapters:
            import ray

            self.adapters[answer["digest"]] = ray.put(body)
        return answer

    @app.post("/v1/stop")
    async def stop(self, request: Request):
        if isinstance(body := await self._admit(request), JSONResponse):
            return body
        found = self.stops.get(body.get("request")) if isinstance(body, dict) and isinstance(body.get("request"), str) else None
        if found is None or found[0] != request.headers.get("x-visitor", ""):
            return {"stopped": False}
        found[1].set()
        return {"stopped": True}

    @app.post("/v1/generate")
    async def generate(self, request: Request):
        if isinstance(body := await self._admit(request), JSONResponse):
            return body
        visitor = request.headers.get("x-visitor", "")[:64] or "anonymous"
        if self.held[visitor] >= self.per_visitor:
            return refuse(429, "SettingsError", f"you already have {self.held[visitor]} requests in the room's queue: wait for one to finish")
        if sum(self.held.values()) >= MAX_WAITING:
            return refuse(503, "KitError", "the room's queue is full: try again in a minute")
        request_id = uuid.uuid4().hex
        stopped = asyncio.Event()
        self.held[visitor] += 1
        self.stops[request_id] = (visitor, stopped)
        return StreamingResponse(self._stream(body, visitor, request_id, stopped), media_type="application/x-ndjson")

    async def _stream(self, body, visitor: str, request_id: str, stopped: asyncio.Event):
        stage, step = "queue", 0
        events = waiting = None
        turn = self.turns[visitor]
        try:
            yield line({"type": "accepted", "request": request_id})
            waiting = asyncio.ensure_future(turn.acquire())
            await asyncio.sleep(0)  # a free turn is taken at once
            follows = not waiting.done()
            while not waiting.done():  # this visitor's earlier request is still at the model
                await asyncio.wait({waiting}, timeout=HEARTBEAT_S)
                if stopped.is_set():
                    waiting.cancel()
                    yield line({"type": "done", "interrupted": "stopped while waiting in the room's queue", "prior_runs": 0})
                    return
                if not waiting.done():
                    yield line({"type": "waiting"})
            asked = body if isinstance(body, dict) else {}
            forwarded = {key: asked.get(key) for key in ("request", "batch_size", "previews")} | {"events": asked.get("events") is not False}
            forwarded["follows"] = follows  # it waited for this visitor's earlier request: nobody else's waits for it (replica.py)
            if isinstance(asked.get("adapter"), str):  # the adapter's files go along by reference, for a replica without it
                forwarded["adapter"] = {"digest": asked["adapter"], "payload": self.adapters.get(asked["adapter"])}
            events = self.replica.options(stream=True).generate.remote(forwarded)
            following = asyncio.ensure_future(events.__anext__())
            while True:
                await asyncio.wait({following}, timeout=HEARTBEAT_S)
                if stopped.is_set():
                    events.cancel()
                    following.cancel()
                    where = "while waiting for the model" if stage == "queue" else f"during the {stage} at step {step}"
                    yield line({"type": "done", "interrupted": f"stopped {where}", "prior_runs": 0})
                    return
                if not following.done():
                    yield line({"type": "waiting"})
                    continue
                try:
                    found = following.result()
                except StopAsyncIteration:
                    return
                for event in found:  # the replica sends the events ready together in one list
                    if event.get("type") == "step":
                        stage, step = event["stage"], event["step"]
                yield b"".join(line(event) for event in found)
                following = asyncio.ensure_future(events.__anext__())
        finally:  # done, stopped, or the visitor disconnected: nothing left running for them
            if events is not None:
                events.cancel()
            if waiting is not None:
                if waiting.done() and not waiting.cancelled() and waiting.exception() is None:
                    turn.release()
                else:
                    waiting.cancel()
            self.stops.pop(request_id, None)
            self.held[visitor] -= 1
            if self.held[visitor] <= 0:
                self.held.pop(visitor, None)
                self.turns.pop(visitor, None)  # nobody of theirs is waiting for it
