"""The kit's errors: one base class, so notebooks, panels and the command line can catch the kit's own.

    KitError                     anything the kit refuses or reports
    ├── SettingsError (ValueError)   a value that cannot work; the message names the field
    │   ├── WrongType (TypeError)    a value of the wrong type; the message names the type
    │   ├── SourceError              a model source that cannot be loaded (loading.py)
    │   ├── ImageError               a picture that cannot be used (images.py)
    │   └── FileFormatError          a file the kit wrote, changed or foreign; names the file and field
    ├── GPUOutOfMemory (RuntimeError) the GPU ran out of memory anyway (tasks/runner.py)
    ├── SaveError (OSError)          finished pictures could not be saved; `.result` holds them
    └── CallbackError (RuntimeError) an `on_step` callback raised; `.result` holds what was finished

SettingsError is a ValueError and WrongType also a TypeError, so code written against the built-in
types keeps working. `wrong_type` and `plain_number` are the two checks most entry points share.
"""

import numbers
import sys


class KitError(Exception):
    """Base of every error the kit raises on purpose."""


class SettingsError(KitError, ValueError):
    """A value that cannot work; the message names the field and what would."""


class WrongType(SettingsError, TypeError):
    """A value of the wrong type; the message names the type it got."""


class SourceError(SettingsError):
    """A model source that cannot be loaded: unknown name, missing files, bad weights."""


class ImageError(SettingsError):
    """A picture that cannot be used: unreadable bytes, an empty image, a failed download."""


class FileFormatError(SettingsError):
    """A file the kit reads (PNG metadata, a model folder's kandinsky_lab.json) that is broken or foreign."""


class GPUOutOfMemory(KitError, RuntimeError):
    """The GPU ran out of memory; the message names a preset or size that needs less."""


class SaveError(KitError, OSError):
    """Pictures were made but could not be saved; they are in `.result`."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class CallbackError(KitError, RuntimeError):
    """An `on_step` callback raised (the original is chained as __cause__); `.result` holds the finished pictures."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


def wrong_type(name: str, expected: str, value) -> WrongType:
    """The error for `name` holding a value of the wrong type: 'steps must be a whole number, got str '7''.
    Simple values are shown (shortened); anything else by its type alone."""
    shown = repr(value) if isinstance(value, (str, bytes, numbers.Number, type(None))) else ""
    shown = shown if len(shown) <= 60 else shown[:57] + "…"
    return WrongType(f"{name} must be {expected}, got {type(value).__name__}" + (f" {shown}" if shown else ""))


def plain_number(value):
    """numpy scalars and 0-d arrays (np.int64(25), np.float32(4.0), np.bool_) as the Python number they hold;
    anything else unchanged. Sliders, np.arange and np.linspace hand out numpy numbers; the pipelines
    and JSON want Python ones."""
    np = numpy_if_imported()
    if np is None:
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def numpy_if_imported():
    """numpy, or None while nothing has imported it (then no value can be a numpy one). A room's thin client
    never imports it: 10 MiB less in every visitor's kernel."""
    return sys.modules.get("numpy")


def is_whole(value) -> bool:
    """A whole number that is not a bool (True is not a step count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def expect_whole(value, name: str, low: int, high: int) -> int:
    """`value` as a Python int in [low, high] (numpy integers welcome), or the error naming `name`."""
    value = plain_number(value)
    if not is_whole(value):
        raise wrong_type(name, f"a whole number from {low} to {high}", value)
    if not low <= value <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def expect_tensor(value, name: str, dims: tuple[int, ...]):
    """A torch tensor with one of `dims` dimensions, or the error naming `name` and the shape it got."""
    import torch  # here: errors.py is imported by modules that must stay light

    if not isinstance(value, torch.Tensor):
        raise wrong_type(name, f"a torch tensor with {' or '.join(map(str, dims))} dimensions", value)
    if value.dim() not in dims:
        raise SettingsError(f"{name} must have {' or '.join(map(str, dims))} dimensions, got shape {tuple(value.shape)}")
    return value


def expect_list(value, name: str) -> list:
    """A list, tuple or one-shot iterable (a generator) as a list; not a text, a number or a single picture."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or hasattr(value, "getpixel"):
        raise wrong_type(name, "a list", value)
    return list(value)
