"""The fine-tuning tab: teach the model in this kernel a new concept with LoRA, then draw with it in every tab.

    panel = FineTunePanel(kit)
    panel.example_button.click()             # nano: 12 rendered hearts with their captions
    panel.steps.value = 300
    panel.train_button.click(); panel.wait()
    panel.use.value = True                   # every tab now draws with the adapter

Pictures come from the gallery (select, "add"), uploads or, on nano, the example; one caption per picture,
in the order shown. The panel only reads its widgets into a `kl.FineTune` and hands it to `kl.finetune` on a
worker thread (runner.py): Stop keeps the adapter of the last step, the loss curve redraws as it trains
(training_view.py), and every error — a bad setting or one inside the run — is shown in the status line.
Training needs the model in this kernel: with a room's RemoteKit the tab says so (load an adapter made
elsewhere with `kit.load_adapter` instead).
"""

import html
import time
from pathlib import Path

import ipywidgets as W
import PIL.Image

from ..images import open_image
from ..training_view import TrainingView
from ..world import NEW_SHAPES, taught
from .controls import SLIDER_STYLE, WIDE, png_bytes, slider, uploaded_files
from .gallery import thumbnail
from .runner import Runner

PARTS = {
    "decoder + prior: learns the new word": ("decoder", "prior"),
    "decoder only: no word, changes every picture": ("decoder",),
    "prior only: the word, drawn with the shapes it knows": ("prior",),
}
THUMB = 64  # pixels per picture shown in the strip of chosen pictures


class FineTunePanel:
    title = "Fine-tuning: teach the model a new concept (LoRA)"

    def __init__(self, kit, output_dir=None):
        self.kit = kit
        self.output_dir = output_dir  # the adapter goes to <output_dir>/adapters/…, else outputs/adapters/…
        self.pictures: list[PIL.Image.Image] = []
        self.gallery_images: list[PIL.Image.Image] = []
        self.training = None  # the last kl.finetune run (its folder is the adapter)
        self.runner = Runner()
        self.gallery = W.SelectMultiple(options=[], rows=4, description="gallery", style=SLIDER_STYLE)
        self.add_button = W.Button(description="add selected", icon="plus")
        self.upload = W.FileUpload(accept="image/*", multiple=True, description="upload")
        self.example_button = W.Button(description=f"example: 12 {NEW_SHAPES[0]}s", tooltip=f"rendered {NEW_SHAPES[0]}s, which nano never saw, with captions")
        self.clear_button = W.Button(description="clear", icon="trash")
        self.strip = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.captions = W.Textarea(rows=6, layout=WIDE, placeholder="one caption per picture, in the order above, e.g. 'a red heart on a white background'")
        self.count = W.HTML()
        self.parts = W.Dropdown(options=list(PARTS.items()), value=PARTS["decoder + prior: learns the new word"], description="what learns", style=SLIDER_STYLE, layout=WIDE)
        self.rank = slider(W.IntSlider, "rank", 1, 32, 1, 4)
        self.steps = slider(W.IntSlider, "steps", 10, 2000, 10, 300)
        self.learning_rate = W.FloatLogSlider(value=1e-3, base=10, min=-5, max=-2, step=0.25, description="learning rate", style=SLIDER_STYLE, layout=WIDE, readout_format=".0e")
        self.train_button = W.Button(description="Train", button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = W.IntProgress(value=0, min=0, max=1, description="steps")
        self.status = W.HTML("ready" if kit.trains_here else "fine-tuning trains the model in this kernel, and this playground draws in a room: train in a notebook on kl.load(), then kit.load_adapter(folder) here")
        self.curve = W.Image(format="png", layout=W.Layout(display="none", align_self="flex-start", object_fit="contain"))
        self.log = W.Output()
        self.use = W.Checkbox(value=False, description="draw with it in every tab", indent=False, disabled=True)
        self.scale = slider(W.FloatSlider, "adapter scale", 0.0, 1.5, 0.05, 1.0)
        self.add_button.on_click(self._on_add)
        self.upload.observe(self._on_upload, names="value")
        self.example_button.on_click(self._on_example)
        self.clear_button.on_click(lambda _: self.set_pictures([], ""))
        self.captions.observe(lambda _: self._show_count(), names="value")
        self.train_button.on_click(lambda _: self.train())
        self.stop_button.on_click(lambda _: self.runner.stop.set())
        self.use.observe(lambda _: self._apply_adapter(), names="value")
        self.scale.observe(lambda _: self._apply_adapter(), names="value")
        for name in ("gallery", "add_button", "upload", "example_button", "clear_button", "captions", "count", "parts", "rank", "steps",
                     "learning_rate", "train_button", "stop_button", "progress", "status", "curve", "use", "scale"):  # fmt: skip
            getattr(self, name).add_class(f"kl-finetune-{name.replace('_', '-')}")
        self.train_button.disabled = not kit.trains_here  # a room's client has no model to train
        self.example_button.layout.display = None if getattr(kit, "vocabulary", None) else "none"  # nano's world only
        self._show_count()

    @property
    def widget(self) -> W.Widget:
        if not hasattr(self, "_widget"):  # built once, as Panel.widget: every display shows the same widgets
            self._widget = self._layout()
            self._widget.add_class("kl-panel-finetunepanel")
        return self._widget

    def _layout(self) -> W.Widget:
        return W.VBox([
            W.HTML(f"<h3>{self.title}</h3>"),
            W.HTML("<b>pictures</b> of the new concept (a few to 20), then a caption each naming it with a new word"),
            W.HBox([self.gallery, W.VBox([self.add_button, self.upload, self.example_button, self.clear_button])]),
            self.strip, self.captions, self.count,
            self.parts, self.rank, self.steps, self.learning_rate,
            W.HBox([self.train_button, self.stop_button, self.progress]), self.status, self.curve, self.log,
            W.HBox([self.use, self.scale]),
        ])  # fmt: skip

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def set_gallery(self, images: list[PIL.Image.Image]) -> None:
        self.gallery_images = list(images)
        self.gallery.options = [(f"#{i + 1}", i) for i in range(len(images))]

    def set_pictures(self, pictures: list[PIL.Image.Image], captions: str | None = None) -> None:
        """The pictures to learn from (and, if given, the captions' text: one line per picture)."""
        self.pictures = list(pictures)
        self.strip.children = [W.Image(value=png_bytes(thumbnail(p)), width=str(THUMB), layout=W.Layout(margin="2px", border="1px solid #bbb")) for p in self.pictures]
        if captions is not None:
            self.captions.value = captions
        self._show_count()

    def caption_lines(self) -> list[str]:
        return [line.strip() for line in self.captions.value.splitlines() if line.strip()]

    def settings(self):
        """The kl.FineTune the widgets say (fine_tuning.py is imported here: torch, which a room's client never loads)."""
        from ..fine_tuning import FineTune

        return FineTune(
            pictures=tuple(self.pictures), captions=tuple(self.caption_lines()), parts=self.parts.value,
            rank=self.rank.value, steps=self.steps.value, learning_rate=self.learning_rate.value,
        )  # fmt: skip

    def train(self) -> None:
        """Read the widgets and train on a worker thread; the adapter in use (if any) is taken out first."""
        self.log.clear_output()
        if self.runner.busy:
            return self._show_error(RuntimeError("a training run is going on: press Stop or wait for it"))
        try:
            from ..fine_tuning import check

            self.use.value = False  # kl.finetune learns on the base model
            settings = self.settings()
            check(self.kit, settings)  # what kl.finetune refuses, refused here before the thread starts
        except Exception as error:  # a bad setting: said in the status line, nothing runs
            return self._show_error(error)
        self.progress.max, self.progress.value = settings.steps, 0
        self.train_button.disabled, self.stop_button.disabled, self.use.disabled = True, False, True
        self.status.value = f"training {settings.steps} steps on {len(settings.pictures)} pictures…"
        view = TrainingView(every=10, on_figure=self._show_curve)
        started = time.perf_counter()

        def on_progress(event) -> None:
            self.progress.value = event.step
            view(event)

        def work(stop):
            from ..fine_tuning import finetune

            save_to = None if self.output_dir is None else self._new_folder()
            return finetune(self.kit, settings, save_to=save_to, on_progress=on_progress, stop=stop, bar=False)  # the panel's own bar

        def done(run) -> None:
            self.training = run
            took = time.perf_counter() - started
            notes = "".join(f"<br><i>{html.escape(n)}</i>" for n in run.notes)
            words = f"; the words it learned: {', '.join(run.words)}" if run.words and "prior" in settings.parts else ""
            if run.folder is None:
                self.status.value = f"stopped before the first step: no adapter{notes}"
                return
            how = f"stopped at step {run.saved_step}" if run.interrupted else f"trained {run.steps} steps"
            self.status.value = f"{how} in {took:.0f} s: the adapter is in {html.escape(str(run.folder))}{words}. Tick “draw with it”{notes}"
            self.use.disabled = False

        def finish() -> None:
            self.train_button.disabled, self.stop_button.disabled = False, True

        self.runner.start(work, done, self._show_error, finish)

    def wait(self, timeout: float | None = 600) -> bool:
        return self.runner.wait(timeout)

    def _new_folder(self) -> Path:
        return Path(self.output_dir) / "adapters" / time.strftime("%Y%m%d-%H%M%S")

    def _apply_adapter(self) -> None:
        try:
            if self.use.value and self.training is not None and self.training.folder is not None:
                adapter = self.kit.load_adapter(self.training.folder, scale=self.scale.value)
                self.status.value = f"every tab draws with {html.escape(str(adapter))} at scale {self.scale.value:g}"
            elif not self.use.value and getattr(self.kit, "adapter", None) is not None:
                self.kit.unload_adapter()
                self.status.value = "every tab draws with the base model"
        except Exception as error:
            self._show_error(error)

    def _show_curve(self, figure: PIL.Image.Image) -> None:
        self.curve.value = png_bytes(figure)
        self.curve.layout.display = None

    def _show_count(self) -> None:
        pictures, captions = len(self.pictures), len(self.caption_lines())
        mark = "" if pictures == captions else " <span style='color:#b00020'>— give one caption per picture</span>"
        self.count.value = f"{pictures} picture{'s' * (pictures != 1)}, {captions} caption{'s' * (captions != 1)}{mark}"

    def _show_error(self, error: Exception, details: str | None = None) -> None:
        self.status.value = f"<span style='color:#b00020'><b>Error:</b> {html.escape(str(error))}</span>"
        if details:
            self.log.append_stderr(details)

    def _on_add(self, _=None) -> None:
        chosen = [self.gallery_images[i] for i in self.gallery.value]
        self.set_pictures(self.pictures + chosen)
        self.gallery.value = ()

    def _on_upload(self, change) -> None:
        added, failed = [], []
        for name, data in uploaded_files(change["new"]):
            try:
                added.append(open_image(data, name=name)[0])
            except ValueError as error:
                failed.append(str(error))
        self.set_pictures(self.pictures + added)
        if failed:
            self._show_error(ValueError("; ".join(failed)))

    def _on_example(self, _=None) -> None:
        pictures, captions = taught(NEW_SHAPES[0], 12)
        self.set_pictures(pictures, "\n".join(captions))
