"""One copy of the model behind the room: a Ray Serve deployment that runs the tasks' plans, batching visitors.

Each request is checked by the same checks as a local call and planned as a local call plans it
(tasks/). Its prompts' prior rows (those without a negative prompt) go one by one to `prior`, a
`@serve.batch` method that runs rows of several visitors with the same prior steps and guidance in one
prior call, each with its seed's generator, and leaves them in the Kit's cache, where the plan's own
`embed` finds them. Its decoder rows then go, a chunk at a time, to `draw`, another `@serve.batch` method: chunks of several visitors whose plans have the same
key (task, size, steps, sampler, guidance, strength) are decoded in one pipeline call, each row with its
own seed's CPU generator, so a picture is the one a local kit makes for the same seed (up to the
numerics of the batch size) and its PNG regenerates it anywhere. No call holds more rows than
memory.py predicts to fit. A stopped or disconnected request's rows are dropped from the outputs and
its events; a call nobody is waiting for any more stops at its next step.

All model work runs on one thread (the pipelines are not thread-safe); the event loop stays free
to form the next batch and to stream progress. A batch that starts forming while the model is busy
waits until the model is predicted to be free (`wait_for_model`), so it collects everyone who arrives
meanwhile; on an idle model it waits WAIT_S only, which is what a lone visitor pays.

A request's decoder rows also wait, with the others waiting there, for the requests that arrived before
they were ready and are not at the decoder yet (visitors who clicked a moment later, whose prior is still
to run): otherwise a room's simultaneous clicks, spread over a tenth of a second, split into a small
decoder call and a big one after it. The wait ends at a full batch, and while it lasts the model runs
those priors. Nobody waits for a visitor's next run (it waited at the room's door for their last): that
would let one visitor's many runs hold back another's. This wait is what fills the decoder calls, so
WAIT_S can stay short (5 ms: with 20 ms a lone visitor waited 10 ms more, for nothing the room gained).

After each model call the replica hands the memory the call freed back to the system (glibc's malloc_trim):
a 16-row call leaves some 50 MiB of freed heap that the process would otherwise keep until its next call.
"""

import asyncio
import ctypes
import dataclasses
import gc
import importlib
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ray import serve

from .. import wire
from ..errors import KitError, SettingsError
from ..steps import Interrupted, StepEvent, StopSignal
from .server import MAX_BATCH, WAIT_S

MAX_ADAPTERS = 16  # LoRA adapters a replica keeps loaded (the least recently used unused one goes first)
LONGEST_WAIT_S = 10.0  # a batch never waits longer than this for the model
# The model's thread leaves its step events in a list that the event loop reads every GATHER_S: waking the loop
# at every step (nano makes ~100 a second) made the model's thread wait for the GIL each time (0.3 s a picture)
GATHER_S = 0.05


def open_source(source: str):
    """A Kit for `source`: anything kl.load takes, or "package.module:function" returning a Kit (tests' kits)."""
    if ":" in source and not os.path.exists(source):
        module, name = source.split(":", 1)
        return getattr(importlib.import_module(module), name)()
    from ..loading import load

    return load(source)


@dataclass(eq=False)
class Chunk:
    """Rows of one request on their way to the decoder."""

    plan: object  # tasks.runner.Plan
    rows: object  # embeddings.Embeddings, one row per picture of this chunk
    seeds: list[int]
    on_step: object  # the request's step events (with previews if it asked)
    stop: StopSignal
    batch: int
    batches: int

    @property
    def size(self) -> int:
        return len(self.seeds)

    @property
    def total(self) -> int:
        return self.plan.steps


def chunk_rows(chunks: list[Chunk]) -> int:
    return sum(c.size for c in chunks)


@dataclass(eq=False)
class PriorRow:
    """One prompt and seed of one request on its way to the prior."""

    prompt: str
    steps: int
    guidance: float
    seed: int
    on_step: object
    stop: StopSignal
    batch: int  # which of the request's prior rows (as a local kit numbers them)
    batches: int
    adapter: object = None  # the request's LoRA adapter (adapters.Adapter) and its scale: rows of another one never share a call
    scale: float | None = None
    size = 1

    @property
    def group(self) -> tuple:
        from ..adapters import tag

        return (self.steps, float(self.guidance), tag(self.adapter, self.scale, "prior"))

    @property
    def total(self) -> int:
        return self.steps


def fan_out(stage: str, members: list) -> object:
    """The `callback_on_step_end` of one pipeline call that `members` (Chunks or PriorRows) share: each gets the
    step events of its own rows; a member whose stream fails is stopped; the call stops when nobody is left."""
    offsets = [sum(m.size for m in members[:i]) for i in range(len(members))]

    def callback(pipe, i, t, tensors):
        alive = [(m, o) for m, o in zip(members, offsets) if not m.stop.is_set()]
        if not alive:
            raise Interrupted(stage, i + 1)
        for m, o in alive:
            if m.on_step is None:
                continue
            try:
                m.on_step(StepEvent(stage, i + 1, m.total, int(t), tensors["latents"][o : o + m.size], m.batch, m.batches))
            except Exception:  # a visitor's stream failing must not stop the others' rows
                m.stop.set()
        return {}

    return callback


class Replica:
    """The model and its batches. `generate(request)` streams a request's events as plain dicts."""

    def __init__(self, source: str, max_batch: int = MAX_BATCH, wait_s: float = WAIT_S, threads: int | None = None, limits: dict | None = None):
        import torch

        threads = threads or os.cpu_count() or 1
        torch.set_num_threads(threads)
        self.kit = open_source(source)
        self.limits = wire.Limits(**(limits or {}))
        # torch's CPU thread count is per thread under OpenMP, and Ray starts replicas with OMP_NUM_THREADS=1:
        # without this the model's thread ran on one core (1.5× slower on this 2-core machine)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="model", initializer=torch.set_num_threads, initargs=(threads,))
        self.max_batch = max_batch
        self.wait_s = wait_s
        for queue in (self.draw, self.prior):
            queue.set_max_batch_size(max_batch)
            queue.set_batch_wait_timeout_s(wait_s)
        self.batch_sizes: list[int] = []  # rows of each decoder call, for the benchmark
        self.prior_sizes: list[int] = []  # rows of each prior call
        self.free_at = 0.0  # when the model is predicted to be free (time.monotonic)
        self.arrivals = 0  # requests so far: each is numbered in arrival order
        self.before_decoder: set[int] = set()  # the numbers of requests that have not reached the decoder yet
        self.reached = asyncio.Condition()  # notified when one of them does, or leaves
        self.horizon = 0  # the decoder's waiters wait for the requests numbered below this
        self.waiting_rows = 0  # rows waiting to go to the decoder together (wait_for_earlier)
        self.group = 0  # counts the groups of waiters that went on together
        self.call_s = {"prior": 0.0, "decoder": 0.0}  # running mean of a call's seconds, per kind
        self.adapters: OrderedDict = OrderedDict()  # digest -> adapters.Adapter loaded into the model, newest last
        self.adapter_folder = Path(tempfile.mkdtemp(prefix="kandinsky-lab-adapters-"))
        self.using: Counter = Counter()  # digest -> requests drawing with it now (never unloaded meanwhile)
        self.timing = None
        if self.kit.vocabulary is not None and self.kit.trained_size is not None:
            from ..timing import calibrate

            self.timing = calibrate(self.kit)
        gc.collect()
        hand_back_memory()  # what loading and calibrating freed

    def info(self) -> dict:
        """The model's numbers a client needs to plan sizes, say notes and build its panels."""
        kit = self.kit
        return {
            "source": kit.source,
            "default_size": kit.default_size,
            "size_multiple": kit.size_multiple,
            "latent_cell": kit.latent_cell,
            "trained_size": kit.trained_size,
            "vocabulary": None if kit.vocabulary is None else sorted(kit.vocabulary),
            "guidance": kit.guidance,
            "offload": kit.offload,
            "device": f"{kit.device} ({str(kit.dtype).removeprefix('torch.')})",
            "timing": self.timing,
            "limits": dataclasses.asdict(self.limits),
            "max_batch": self.max_batch,
        }

    def stats(self) -> dict:
        return {"batch_sizes": list(self.batch_sizes), "prior_sizes": list(self.prior_sizes), "prior_runs": self.kit.prior_runs, "call_s": dict(self.call_s), "threads": self.pool.submit(_threads).result(), "cpus": len(os.sched_getaffinity(0))}

    def wait_for_model(self, queue) -> None:
        """Before a row joins `queue`: a batch it starts waits for the busy model (at most LONGEST_WAIT_S)."""
        queue.set_batch_wait_timeout_s(min(LONGEST_WAIT_S, max(self.wait_s, self.free_at - time.monotonic())))

    async def wait_for_earlier(self, number: int, rows: int) -> None:
        """Request `number`'s `rows` are ready for the decoder: they wait here with the others waiting, until no request
        that arrived before the last of them came here is still before the decoder, or they make a full batch (at most
        LONGEST_WAIT_S); then they all go on together, and Ray's `draw` batch takes them as one."""
        async with self.reached:
            self._arrived(number)
            self.horizon = max(self.horizon, self.arrivals)
            self.waiting_rows += rows
            group = self.group

            def released() -> bool:
                if self.group != group:  # the others of this group went on
                    return True
                if self.waiting_rows >= self.max_batch or not any(n < self.horizon for n in self.before_decoder):
                    self.group, self.waiting_rows = self.group + 1, 0
                    self.reached.notify_all()
                    return True
                return False

            try:
                await asyncio.wait_for(self.reached.wait_for(released), LONGEST_WAIT_S)
            except TimeoutError:
                pass
            finally:
                if self.group == group:  # timed out or stopped: no longer waiting
                    self.waiting_rows -= rows

    async def _left(self, number: int) -> None:
        async with self.reached:
            self._arrived(number)

    def _arrived(self, number: int) -> None:
        """Request `number` is at the decoder, or has gone: the waiters there look again (under `reached`)."""
        if number in self.before_decoder:
            self.before_decoder.discard(number)
            self.reached.notify_all()

    def on_model(self, kind: str, call):
        """Run `call()` on the model's thread's time, keeping the prediction of when the model is free."""
        started = time.monotonic()
        self.free_at = started + self.call_s[kind]
        try:
            return call()
        finally:
            took = time.monotonic() - started
            self.call_s[kind] = took if not self.call_s[kind] else 0.7 * self.call_s[kind] + 0.3 * took
            hand_back_memory()
            self.free_at = time.monotonic()

    async def add_adapter(self, payload: dict) -> dict:
        """A visitor's LoRA adapter (wire.adapter_to_json): checked, loaded into the model; its digest and name."""
        try:
            adapter = await asyncio.get_running_loop().run_in_executor(self.pool, self._install, payload)
        except (KitError, ValueError, TypeError) as error:
            return {"type": "error", "error": type(error).__name__, "message": str(error)}
        return {"type": "adapter", "digest": adapter.digest, "name": adapter.name, "parts": list(adapter.parts)}

    def _install(self, payload) -> object:
        """Write the adapter's files to this replica's folder, read them as a local kit would, and load them."""
        from .. import adapters

        folder = Path(tempfile.mkdtemp(dir=self.adapter_folder))
        try:
            wire.adapter_files(payload, folder, self.limits)
            adapter = adapters.read(folder)
            adapters.check_fits(self.kit, adapter)  # every time: the same weights may come with another adapter.json
            if adapter.digest in self.adapters:
                shutil.rmtree(folder)
                self.adapters.move_to_end(adapter.digest)
                return self.adapters[adapter.digest]
            with self.kit.lock:
                adapters.put(self.kit, adapter)
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.adapters[adapter.digest] = adapter
        for digest in [d for d in self.adapters if not self.using[d]][: max(0, len(self.adapters) - MAX_ADAPTERS)]:
            with self.kit.lock:
                adapters.remove(self.kit, self.adapters.pop(digest))
        return adapter

    async def _adapter(self, asked) -> object:
        """The adapter a request draws with: loaded already, or from the payload the room keeps for it."""
        if asked is None:
            return None
        if not isinstance(asked, dict) or not isinstance(asked.get("digest"), str):
            raise SettingsError("a request's adapter must be {'digest': …}")
        if asked["digest"] in self.adapters:
            self.adapters.move_to_end(asked["digest"])
            return self.adapters[asked["digest"]]
        if asked.get("payload") is None:
            raise KitError(f"the room's server does not hold the adapter {asked['digest']}: load it again (kit.load_adapter)")
        payload = await asked["payload"]  # a Ray object the room put when the adapter was sent
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._install, payload)

    async def depth(self, picture: dict) -> dict:
        from ..depth import depth_map

        image = wire.picture_from_json(picture, "picture", self.limits)
        try:
            found = await asyncio.get_running_loop().run_in_executor(self.pool, depth_map, self.kit, image)
        except KitError as error:
            return {"type": "error", "error": type(error).__name__, "message": str(error)}
        return {"type": "depth", "depth": wire.picture_to_json(found)}

    async def generate(self, request: dict):
        """Stream the events of one request (start, steps, images, done or error), in lists of those ready together."""
        events: deque = deque()  # appended by the model's thread without waking the event loop (see GATHER_S)
        stop = StopSignal()
        work = asyncio.ensure_future(self._work(request, stop, events.append))
        try:
            while True:
                await asyncio.wait({work}, timeout=GATHER_S)
                found = [events.popleft() for _ in range(len(events))]
                if work.done():
                    yield [*found, *(events.popleft() for _ in range(len(events))), work.result()]
                    return
                if found:
                    yield found
        finally:  # finished, stopped by the room, or the visitor went away: nobody waits for these rows
            stop.set()
            if not work.done():
                work.cancel()

    async def _work(self, request: dict, stop: StopSignal, emit) -> dict:
        from ..steps import with_previews
        from ..tasks import check
        from ..tasks.request import check_options
        from ..tasks.runner import plan_for

        loop = asyncio.get_running_loop()
        in_model = lambda call, *args: loop.run_in_executor(self.pool, call, *args)  # noqa: E731
        stage, settings, adapter = "prior", None, None
        number, self.arrivals = self.arrivals, self.arrivals + 1
        if not (isinstance(request, dict) and request.get("follows")):  # a visitor's next run is waited for by nobody
            self.before_decoder.add(number)
        try:
            if not isinstance(request, dict):
                raise SettingsError("a request must be a JSON object")
            settings = wire.settings_from_json(request.get("request"), self.limits)
            check(settings)  # the task function's own checks
            batch_size = check_options(settings, batch_size=request.get("batch_size"), previews=request.get("previews"))
            adapter = await self._adapter(request.get("adapter"))
            if adapter is not None:
                self.using[adapter.digest] += 1
            plan = await in_model(plan_for, self.kit, settings, adapter)
            s = plan.settings
            wire.check_limits(s, self.limits)
            rows = len(s.decoder_seeds())
            fitting = await in_model(self.kit.fitting_batch, s.height, s.width, min(rows, self.max_batch))
            chunk = max(1, min(batch_size or rows, self.max_batch, fitting))
            await in_model(self.kit.check_fits, s.height, s.width, chunk)
            filled = {"height": s.height, "width": s.width, "guidance_scale": s.guidance_scale, "adapter_scale": s.adapter_scale}
            emit({"type": "start", "settings": filled, "notes": plan.notes, "batch_size": chunk, "adapter": plan.adapter_record()})

            def send(event: StepEvent) -> None:
                emit(wire.event_to_json(event))

            wants = request.get("events", True) or request.get("previews") is not None  # a client without on_step: none
            on_step = with_previews(self.kit, send, request.get("previews")) if wants else None
            prior_runs = await self._batched_prior(plan, on_step, stop)
            embeddings, more = await in_model(self._embed, plan, on_step, stop)
            prior_runs += more
            stage = "decoder"
            await self.wait_for_earlier(number, min(rows, self.max_batch))
            starts = range(0, rows, chunk)
            seeds = s.decoder_seeds()
            for b, start in enumerate(starts):
                part = Chunk(plan, embeddings.rows(start, start + chunk), seeds[start : start + chunk], on_step, stop, b + 1, len(starts))
                self.wait_for_model(self.draw)
                kind, value = await self.draw(part)
                if kind == "interrupted":
                    return {"type": "done", "interrupted": value, "prior_runs": prior_runs}
                if kind == "error":
                    raise value
                emit({"type": "images", "images": [wire.picture_to_json(p) for p in value]})
            return {"type": "done", "interrupted": None, "prior_runs": prior_runs}
        except Interrupted as stopped:
            return {"type": "done", "interrupted": str(stopped), "prior_runs": 0}
        except (KitError, ValueError, TypeError) as error:
            return {"type": "error", "error": type(error).__name__, "message": str(error)}
        except Exception as error:  # the model failed: say so, keep serving
            if _out_of_memory(error) and settings is not None:
                return {"type": "error", "error": "GPUOutOfMemory", "message": self._advice(settings, stage)}
            return {"type": "error", "error": "KitError", "message": f"the server failed during the {stage}: {type(error).__name__}: {error}"}
        finally:
            await self._left(number)  # if it never reached the decoder: nobody waits for it any more
            if adapter is not None:
                self.using[adapter.digest] -= 1

    async def _batched_prior(self, plan, on_step, stop) -> int:
        """The plan's uncached prior rows through the batched `prior`, one at a time (a request's own rows run one
        by one, as on a local kit: alone, a picture is bit for bit a local kit's); how many were run."""
        s, ran = plan.settings, 0
        seeds = s.prior_seeds()
        for prompt in plan.prior_asks:
            for k, seed in enumerate(seeds):
                row = PriorRow(prompt, s.prior_steps, s.prior_guidance_scale, seed, on_step, stop, k + 1, len(seeds), plan.adapter, s.adapter_scale)
                if self.kit.recall(self._prior_key(row)) is not None:
                    continue
                self.wait_for_model(self.prior)
                kind, value = await self.prior(row)
                if kind == "interrupted":
                    raise Interrupted("prior", value)
                if kind == "error":
                    raise value
                ran += 1
        return ran

    def _prior_key(self, row: PriorRow) -> tuple:
        """embeddings.prompt_embeddings' key for the row (the adapter's tag last, as Kit.prior_tag puts it)."""
        return ("prior", row.prompt, "", row.steps, float(row.guidance), row.seed, self.kit.dtype, row.group[2])

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=WAIT_S)
    async def prior(self, rows: list[PriorRow]) -> list[tuple]:
        """Prior rows that came together: one prior call per (steps, guidance)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.on_model, "prior", lambda: self._prior_all(rows))

    def _prior_all(self, rows: list[PriorRow]) -> list[tuple]:
        import torch

        from .. import adapters
        from ..quiet import no_truncation_warning

        outcomes, groups = {}, {}
        for r in rows:
            if r.stop.is_set():
                outcomes[id(r)] = ("interrupted", 0)
            else:
                groups.setdefault(r.group, []).append(r)
        for (steps, guidance, _), members in groups.items():
            self.prior_sizes.append(len(members))
            try:
                with self.kit.lock, adapters.active(self.kit, members[0].adapter, members[0].scale), no_truncation_warning():
                    out = self.kit.prior(
                        [m.prompt for m in members],
                        negative_prompt=None,
                        num_inference_steps=steps,
                        guidance_scale=guidance,
                        generator=[torch.Generator("cpu").manual_seed(m.seed) for m in members],
                        callback_on_step_end=fan_out("prior", members),
                    )
            except Interrupted as stopped:
                outcomes |= {id(m): ("interrupted", stopped.step) for m in members}
                continue
            except Exception as error:
                outcomes |= {id(m): ("error", error) for m in members}
                continue
            for j, m in enumerate(members):
                self.kit.prior_runs += 1
                self.kit.remember(self._prior_key(m), (out.image_embeds[j : j + 1], out.negative_image_embeds[j : j + 1]))
                outcomes[id(m)] = ("interrupted", 0) if m.stop.is_set() else ("done", None)
        return [outcomes[id(r)] for r in rows]

    def _embed(self, plan, on_step, stop):
        from .. import adapters

        before = self.kit.prior_runs
        with self.kit.lock, adapters.active(self.kit, plan.adapter, plan.settings.adapter_scale):
            embeddings = plan.embed(on_step, stop)
        return embeddings, self.kit.prior_runs - before

    def _advice(self, settings, stage: str) -> str:
        from ..result import Result
        from ..tasks.runner import out_of_memory_advice

        return out_of_memory_advice(self.kit, Result([], settings, [], [], self.kit.source, self.max_batch), stage)

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=WAIT_S, batch_size_fn=chunk_rows)
    async def draw(self, chunks: list[Chunk]) -> list[tuple]:
        """Decode the chunks that came together: one pipeline call per key, ≤ the rows that fit."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.on_model, "decoder", lambda: self._draw_all(chunks))

    def _draw_all(self, chunks: list[Chunk]) -> list[tuple]:
        outcomes = {}
        groups: dict[tuple, list[Chunk]] = {}
        for c in chunks:
            if c.stop.is_set():
                outcomes[id(c)] = ("interrupted", "stopped while waiting for the decoder")
            else:
                groups.setdefault(c.plan.key(), []).append(c)
        for members in groups.values():
            s = members[0].plan.settings
            most = self.kit.fitting_batch(s.height, s.width, chunk_rows(members))
            call: list[Chunk] = []
            for c in members + [None]:
                if c is None or (call and chunk_rows(call) + c.size > most):
                    outcomes |= self._draw_together(call)
                    call = []
                if c is not None:
                    call.append(c)
        return [outcomes[id(c)] for c in chunks]

    def _draw_together(self, members: list[Chunk]) -> dict:
        """One decoder call for the rows of `members` (the same key); per member, its pictures or what happened."""
        import torch

        from .. import adapters
        from ..embeddings import Embeddings
        from ..tasks.runner import decoder_kwargs

        plan, s = members[0].plan, members[0].plan.settings
        offsets = [sum(m.size for m in members[:i]) for i in range(len(members))]

        rows = Embeddings(
            torch.cat([m.rows.image_embeds for m in members]), torch.cat([m.rows.negative_image_embeds for m in members])
        )
        seeds = [seed for m in members for seed in m.seeds]
        kwargs = decoder_kwargs(s, rows, seeds, fan_out("decoder", members)) | plan.options
        inputs = [m.plan.inputs for m in members for _ in range(m.size)]
        self.batch_sizes.append(len(seeds))
        try:
            with self.kit.lock, self.kit.sampler(s.sampler), adapters.active(self.kit, plan.adapter, s.adapter_scale):
                images = plan.draw(self.kit, kwargs, inputs)
        except Interrupted as stopped:
            return {id(m): ("interrupted", str(stopped)) for m in members}
        except Exception as error:
            if _out_of_memory(error):
                import gc

                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                error = _oom_error(self._advice(s, "decoder"))
            return {id(m): ("error", error) for m in members}
        out = {}
        for m, o in zip(members, offsets):
            out[id(m)] = ("interrupted", "stopped during the decoder") if m.stop.is_set() else ("images", images[o : o + m.size])
        return out


def hand_back_memory() -> None:
    """Return the heap's free pages to the system (glibc); elsewhere nothing."""
    if sys.platform == "linux":
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl)
            pass


def _out_of_memory(error: Exception) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError)


def _oom_error(message: str):
    from ..errors import GPUOutOfMemory

    return GPUOutOfMemory(message)


def deployment(replicas: int, gpus: float, cpus: float):
    """The Replica class as a Ray Serve deployment with these resources."""
    return serve.deployment(
        Replica,
        name="Replica",
        num_replicas=replicas,
        max_ongoing_requests=256,  # queued requests wait in the batch queue, not in Ray's
        ray_actor_options={"num_gpus": gpus, "num_cpus": cpus},
        health_check_period_s=10,
    )


def _threads() -> int:
    import torch

    return torch.get_num_threads()
