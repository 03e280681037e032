"""A fine-tuning run drawn as it trains, in a notebook: the loss curve and each checkpoint's preview grid.

    run = kl.finetune(kit, settings, on_progress=kl.TrainingView())

It takes the TrainingEvents `finetune` sends after each step and redraws one figure in place (every
`every` steps, so drawing costs little of the run): each part's loss, raw and smoothed, and below it the
newest checkpoint's pictures. Outside a notebook it draws nothing; `figure()` gives the picture anyway, and
`on_figure` hands each redrawn figure to a function instead (the playground's fine-tuning tab shows it in a widget).
"""

import io

import PIL.Image

SMOOTHING = 0.9  # of the exponential moving average drawn over the raw losses


def smoothed(values: list[float], weight: float = SMOOTHING) -> list[float]:
    out, average = [], None
    for v in values:
        average = v if average is None else weight * average + (1 - weight) * v
        out.append(average)
    return out


class TrainingView:
    """on_progress for kl.finetune: a live loss curve and the checkpoint previews."""

    def __init__(self, every: int = 20, on_figure=None):
        self.every = every
        self.on_figure = on_figure  # called with each redrawn figure instead of displaying it (a panel's image widget)
        self.losses: dict[str, list[float]] = {}
        self.previews: dict[int, PIL.Image.Image] = {}
        self.steps = 0
        self._handle = None

    def __call__(self, event) -> None:
        for part, value in event.losses.items():
            self.losses.setdefault(part, []).append(value)
        self.steps = event.steps
        if event.preview is not None:
            self.previews[event.step] = event.preview
        if event.step % self.every == 0 or event.step == event.steps or event.preview is not None:
            self.show()

    def figure(self) -> PIL.Image.Image:
        """The loss curves as a picture (with the newest preview grid below them, if any)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 2.6), dpi=100)
        ax = fig.subplots()
        for part, values in self.losses.items():
            steps = range(1, len(values) + 1)
            line = ax.plot(steps, values, alpha=0.25, linewidth=0.8)[0]
            ax.plot(steps, smoothed(values), color=line.get_color(), label=f"{part} loss")
        ax.set_xlim(0, max(self.steps, 1))
        ax.set_xlabel("step")
        ax.set_ylabel("loss (mean squared error)")
        if self.losses:
            ax.legend(loc="upper right", fontsize=8)
        ax.set_title("fine-tuning: the loss (faint: each step, bold: smoothed)", fontsize=10)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        curve = PIL.Image.open(buffer).convert("RGB")
        if not self.previews:
            return curve
        grid = self.previews[max(self.previews)]
        both = PIL.Image.new("RGB", (max(curve.width, grid.width), curve.height + grid.height), "white")
        both.paste(curve, (0, 0))
        both.paste(grid, (0, curve.height))
        return both

    def show(self) -> None:
        if self.on_figure is not None:
            self.on_figure(self.figure())
            return
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display(self.figure(), display_id=True)
        else:
            self._handle.update(self.figure())
