"""X/Y sweeps: vary one or two settings over a list of values and see every combination in a grid.

    sw = sweep(kit, kl.TextToImage(prompt="a red circle"),
               x=("guidance_scale", [1.0, 4.0, 8.0]), y=("steps", [10, 25, 50]))
    sw.grid                     # labelled PIL image
    sw.cells[row][col].image    # one picture, sw.cells[row][col].result has its settings

Any field of the settings works as an axis (guidance, steps, strength, seed, weights, mode, …).
Work is shared where the model allows it: the prior runs once per distinct prompt/prior setting
(the Kit remembers embeddings), and cells that differ only in `seed` (consecutive values) are made
in one batched decoder call.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import PIL.Image

from .errors import SettingsError, expect_list, expect_whole, plain_number, wrong_type
from .result import Result
from .grids import image_grid
from .backend import Backend, expect_backend
from .settings import SAMPLER_LABELS, Interpolation, Sampling, expect_task, task_class
from .steps import OnStep, StopSignal


@dataclass
class Cell:
    result: Result  # the call that made this picture (possibly shared by cells of a seed batch)
    index: int  # which of result.images

    @property
    def image(self) -> PIL.Image.Image:
        return self.result.images[self.index]


@dataclass
class Sweep:
    x: tuple[str, list]
    y: tuple[str, list] | None
    cells: list[list[Cell | None]]  # [row][col]; None where a stop came first
    grid: PIL.Image.Image
    prior_runs: int  # prior calls this sweep made
    decoder_calls: int  # decoder calls this sweep made
    interrupted: str | None = None


SHORT_NAMES = {
    "guidance_scale": "CFG",
    "prior_guidance_scale": "prior CFG",
    "prior_steps": "prior steps",
    "decoder_seed": "decoder seed",
    "normalize_weights": "normalize",
}


def label(name: str, value) -> str:
    """`name=value` for a grid label, with short names for long settings and compact numbers."""
    if name == "sampler" and value in SAMPLER_LABELS:
        return SAMPLER_LABELS[value]  # "DPM++ 2M": the axis says itself
    name = SHORT_NAMES.get(name, name)
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, PIL.Image.Image):
        text = f"image {value.width}x{value.height}"
    elif isinstance(value, (tuple, list)):
        text = "(" + ", ".join(label("", v) for v in value) + ")"
    elif value == "":
        text = "(none)"  # an empty negative prompt: a bare "negative_prompt=" reads like a cut label
    else:
        text = str(value)
    return f"{name}={text}" if name else text


def sweep(
    kit: Backend,
    settings: Sampling,
    x: tuple[str, Sequence],
    y: tuple[str, Sequence] | None = None,
    *,
    title: str | None = None,
    on_step: OnStep | None = None,
    stop: StopSignal | None = None,
) -> Sweep:
    """Run every (y, x) combination of `settings` with one image per cell; see the module docstring."""
    expect_backend(kit)
    task_class(settings)
    fields = {f.name for f in dataclasses.fields(settings)}
    axes = []
    for which, axis in (("x", x), ("y", y)):
        if axis is None and which == "y":
            continue
        if not isinstance(axis, (tuple, list)) or len(axis) != 2 or not isinstance(axis[0], str):
            raise wrong_type(which, '(field name, values), e.g. ("steps", [10, 25, 50])', axis)
        axes.append((axis[0], [plain_number(v) for v in expect_list(axis[1], f"{which}'s values")]))  # np.arange, generators
    x, y = axes[0], (axes[1] if len(axes) > 1 else None)
    for name, values in axes:
        if name not in fields or name == "num_images":
            raise SettingsError(f"cannot sweep {name!r}: choose one of {sorted(fields - {'num_images'})}")
        if len(values) == 0:
            raise SettingsError(f"the {name!r} axis has no values")
    if y is not None and x[0] == y[0]:
        raise SettingsError(f"x and y both sweep {x[0]!r}")
    ys = [None] if y is None else list(y[1])
    plan = [
        [dataclasses.replace(settings, num_images=1, **{x[0]: xv, **({} if y is None else {y[0]: yv})}) for xv in x[1]]
        for yv in ys
    ]
    cells: list[list[Cell | None]] = [[None] * len(x[1]) for _ in ys]
    prior_before, calls, interrupted = kit.prior_runs, 0, None
    for group in _seed_batches(plan):
        (r0, c0), first = group[0], plan[group[0][0]][group[0][1]]
        from .tasks import run

        result = run(kit, dataclasses.replace(first, num_images=len(group)), on_step=on_step, stop=stop)
        calls += 1
        for i, (r, c) in enumerate(group[: len(result.images)]):
            cells[r][c] = Cell(result, i)
        if result.interrupted:
            interrupted = result.interrupted
            break
    grid = image_grid(
        [[cell.image if cell else None for cell in row] for row in cells],
        row_labels=None if y is None else [label(y[0], v) for v in ys],
        col_labels=[label(x[0], v) for v in x[1]],
        title=title,
    )
    return Sweep((x[0], list(x[1])), None if y is None else (y[0], ys), cells, grid, kit.prior_runs - prior_before, calls, interrupted)


def _seed_batches(plan: list[list[Sampling]]) -> list[list[tuple[int, int]]]:
    """Cells grouped so that each group is one call: same settings but for consecutive seeds.

    Each group is ordered by seed, so image i of the call is the cell at group[i].
    """
    groups: list[tuple[Sampling, list[tuple[int, int]]]] = []
    for r, row in enumerate(plan):
        for c, s in enumerate(row):
            key = dataclasses.replace(s, seed=0)
            for other_key, members in groups:
                if s.decoder_seed is None and other_key == key and _extends(plan, members, s.seed):
                    members.append((r, c))
                    break
            else:
                groups.append((key, [(r, c)]))
    return [members for _, members in groups]


def _extends(plan, members, seed: int) -> bool:
    """Whether `seed` continues the run of seeds in `members` (so the batch stays seed, seed+1, …)."""
    last = plan[members[-1][0]][members[-1][1]].seed
    return seed == last + 1


def triangle_weights(n: int) -> list[list[tuple[float, float, float]]]:
    """Barycentric weights on a triangle with `n` points per side: row r has r + 1 points.

    The top point is all of item 0; the bottom row runs from all of item 1 to all of item 2.
    """
    n = expect_whole(n, "n (points per side)", 2, 16)
    rows = []
    for r in range(n):
        row = []
        for c in range(r + 1):
            w1, w2 = round((r - c) / (n - 1), 6), round(c / (n - 1), 6)
            row.append((round(1 - w1 - w2, 6), w1, w2))
        rows.append(row)
    return rows


def triangle(kit: Backend, settings: Sampling, n: int = 4, *, title: str | None = None, stop: StopSignal | None = None) -> Sweep:
    """Mix three items of an Interpolation over a triangle of weights; returns a Sweep with a left-aligned grid."""
    expect_backend(kit)
    expect_task(settings, Interpolation)
    if len(settings.items) != 3:
        raise SettingsError(f"a mixing triangle needs exactly 3 items, got {len(settings.items)}")
    weights = triangle_weights(n)
    cells: list[list[Cell | None]] = [[None] * (r + 1) for r in range(n)]
    prior_before, calls, interrupted = kit.prior_runs, 0, None
    for r, row in enumerate(weights):
        for c, w in enumerate(row):
            from .tasks import run

            result = run(kit, dataclasses.replace(settings, weights=w, num_images=1), stop=stop)
            calls += 1
            if result.interrupted:
                interrupted = result.interrupted
                break
            cells[r][c] = Cell(result, 0)
        if interrupted:
            break
    grid = image_grid(
        [[cell.image if cell else None for cell in row] for row in cells],
        row_labels=[label("", weights[r][0][0]) + " of item 0" for r in range(n)],
        title=title,
    )
    return Sweep(("weights", weights), None, cells, grid, kit.prior_runs - prior_before, calls, interrupted)
