"""The bottom half of every panel: Generate and Stop, progress per stage, live preview, result, errors.

`RunArea.start(kit, settings, task)` runs `task(kit, settings, on_step=…, stop=…)` on a worker thread
(runner.py) and shows what happens. Every error — a bad setting when Generate is pressed, or an
exception inside the model — ends up in the status line, with the traceback in the log below it,
and clears what an earlier run left (result, preview, progress), so nothing old looks like its outcome.

The live preview is labelled as one, shown at the size and shape the result will have, in the
model's colours (steps.preview_colors), and gives way to the result when the run ends.
"""

import html
import time
from collections.abc import Callable

import ipywidgets as W

from ..grids import enlargement, image_grid
from ..steps import Previews, StepEvent, preview_colors
from .controls import png_bytes
from .runner import Runner

PREVIEW_EVERY = 5  # decoder steps between live previews


class RunArea:
    def __init__(self, on_result: Callable | None = None, output_dir=None):
        self.on_result = on_result  # called with each finished Result (the history gallery listens here)
        self.output_dir = output_dir  # every picture is saved here the moment its batch is done
        self.runner = Runner()
        self.generate_button = W.Button(description="Generate", button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.decode_previews = W.Checkbox(value=False, description="decode previews (slower)", indent=False)
        self.prior_progress = W.IntProgress(value=0, min=0, max=1, description="prior")
        self.decoder_progress = W.IntProgress(value=0, min=0, max=1, description="decoder")
        self.status = W.HTML("ready")
        # Shown at their own pixel size (never stretched by the box around them); hidden until set.
        self.preview = W.Image(format="png", layout=W.Layout(align_self="flex-start", object_fit="contain"))
        self.preview_label = W.HTML()
        self.preview_box = W.VBox([self.preview_label, self.preview], layout=W.Layout(display="none", align_items="flex-start"))
        self.result_image = W.Image(format="png", layout=W.Layout(display="none", align_self="flex-start", object_fit="contain"))
        self.log = W.Output()
        self.last_result = None
        self.stop_button.on_click(lambda _: self.runner.stop.set())
        for name in ("generate_button", "stop_button", "status", "preview", "preview_label", "result_image", "prior_progress", "decoder_progress"):
            getattr(self, name).add_class(f"kl-{name.replace('_', '-')}")
        self.box = W.VBox(
            [
                W.HBox([self.generate_button, self.stop_button, self.decode_previews]),
                W.HBox([self.prior_progress, self.decoder_progress]),
                self.status,
                self.preview_box,
                self.result_image,
                self.log,
            ]
        )

    def show_error(self, error: Exception, details: str | None = None) -> None:
        self.clear()
        self.status.value = f"<span style='color:#b00020'><b>Error:</b> {html.escape(str(error))}</span>"
        if details:
            self.log.append_stderr(details)

    def clear(self) -> None:
        """Hide the last result and preview and empty the progress bars (before a run, and on an error)."""
        self.preview_box.layout.display = self.result_image.layout.display = "none"
        self.prior_progress.value = self.decoder_progress.value = 0
        self.prior_progress.description, self.decoder_progress.description = "prior", "decoder"

    def start(self, kit, settings, task: Callable) -> None:
        if self.runner.busy:
            raise RuntimeError("a generation is already running: press Stop or wait for it")
        self.log.clear_output()
        self.clear()
        self.generate_button.disabled, self.stop_button.disabled = True, False
        self.status.value = "running…"
        decode = self.decode_previews.value
        factor = 1 if decode else kit.latent_cell  # latent pixel → picture pixels
        show = lambda images, event: self._show_preview(images, event, factor)
        started = time.perf_counter()
        previews = None
        # the model in this kernel hands its latents to `on_step`; a room's server sends pictures of them instead
        asked = {} if kit.has_latents else {"previews": "decoded" if decode else "colors"}

        def on_step(event: StepEvent) -> None:
            nonlocal previews
            bar = self.prior_progress if event.stage == "prior" else self.decoder_progress
            bar.max, bar.value = event.total, event.step
            bar.description = event.stage if event.batches == 1 else f"{event.stage} {event.batch}/{event.batches}"
            if event.previews is not None:
                show(list(event.previews), event)
            elif previews is None and event.stage == "decoder" and event.latents is not None:  # on the worker thread: the colour fit runs once per Kit
                colors = None if decode else preview_colors(kit)
                previews = Previews(show, every=PREVIEW_EVERY, movq=kit.decoder.movq if decode else None, colors=colors)
            if previews is not None:
                previews(event)

        def work(stop):
            return task(kit, settings, on_step=on_step, stop=stop, batch_size=1, save_to=self.output_dir, **asked)

        def done(result):
            self.last_result = result
            self.preview_box.layout.display = "none"  # the result takes its place
            took = time.perf_counter() - started
            if result.images:
                labels = [f"seed {s}" for s in result.decoder_seeds[: len(result.images)]]
                self.result_image.value = png_bytes(image_grid([result.images], col_labels=labels))
                self.result_image.layout.display = None
            notes = "".join(f"<br><i>{html.escape(n)}</i>" for n in result.notes)
            h, w = result.size
            if result.interrupted:
                self.status.value = f"{html.escape(result.interrupted)}: kept {len(result.images)} finished image(s){notes}"
            else:
                drawn_with = f", with the adapter {html.escape(result.adapter['name'])} at scale {result.adapter['scale']:g}" if result.adapter else ""
                self.status.value = f"done: {len(result.images)} image(s), {w} × {h}, in {took:.1f} s{drawn_with}{notes}"
            if self.on_result is not None and result.images:
                self.on_result(result)

        def finish():
            self.generate_button.disabled, self.stop_button.disabled = False, True

        self.runner.start(work, done, self.show_error, finish)

    def _show_preview(self, images, event: StepEvent, factor: int) -> None:
        """The first image's preview at the size the result will be shown (image_grid's enlargement), labelled.

        The picture goes to the browser at its own size (the latents' 96 × 96 for a 768 × 768 picture) and
        the browser enlarges it: encoding it enlarged cost ~0.2 s a preview at 768², a second a picture."""
        width, height = images[0].width * factor, images[0].height * factor
        zoom = enlargement(width, height)
        self.preview.layout.width, self.preview.layout.height = f"{width * zoom}px", f"{height * zoom}px"
        self.preview.value = png_bytes(images[0])
        how = "decoded by MoVQ" if factor == 1 else f"from the {images[0].width} × {images[0].height} latents, approximate colours"
        shown = f", shown {zoom}× larger" if zoom > 1 else ""
        batch = f", image batch {event.batch}/{event.batches}" if event.batches > 1 else ""
        self.preview_label.value = (
            f"<i>preview</i> · decoder step {event.step}/{event.total}{batch} · {how} · {width} × {height} px{shown}"
        )
        self.preview_box.layout.display = None

    def wait(self, timeout: float | None = 60) -> bool:
        return self.runner.wait(timeout)
