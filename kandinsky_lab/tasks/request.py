"""The one way in for every task: check the settings and the options, then hand them to the kit's backend.

    kit.generate(settings, on_step=…, stop=…, batch_size=…, save_to=…, previews=…)

A Kit runs the pipelines here (runner.py), a RemoteKit sends the settings to the room's server, whose
replica checks them again with the same functions before running the same runner code.
"""

import json
import os
from pathlib import Path

from ..backend import expect_backend
from ..errors import SettingsError, plain_number, wrong_type
from ..settings import expect_task
from ..steps import PREVIEW_MODES


def request(kit, settings, cls: type, check, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
    """Refuse a wrong kit, another task's settings, bad settings or options (before any work); then run."""
    expect_backend(kit)
    expect_task(settings, cls)
    check(settings)
    batch_size = check_options(settings, on_step=on_step, stop=stop, batch_size=batch_size, save_to=save_to, previews=previews)
    return kit.generate(settings, on_step=on_step, stop=stop, batch_size=batch_size, save_to=save_to, previews=previews)


def check_options(settings, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None) -> int | None:
    """The options every task takes, checked; returns batch_size as a plain int (or None)."""
    batch_size = plain_number(batch_size)
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)):
        raise wrong_type("batch_size", "a whole number >= 1 or None", batch_size)
    if batch_size is not None and batch_size < 1:
        raise SettingsError(f"batch_size must be a whole number >= 1 or None, got {batch_size!r}")
    if on_step is not None and not callable(on_step):
        raise wrong_type("on_step", "a function taking a kl.StepEvent (or None)", on_step)
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise wrong_type("stop", "a kl.StopSignal (or None)", stop)
    if previews is not None and previews not in PREVIEW_MODES:
        raise SettingsError(f"previews must be None or one of {PREVIEW_MODES}, got {previews!r}")
    if save_to is not None:
        check_save_to(save_to, settings)
    return batch_size


def check_save_to(save_to, settings) -> None:
    """Before any work: `save_to` is a folder that exists or can be made and written, and the settings
    serialise into the PNG metadata. A picture is never made only to be lost at the saving step."""
    from ..metadata import settings_to_dict  # metadata.py imports the tasks

    writable_folder(save_to)
    try:
        json.dumps(settings_to_dict(settings))
    except (TypeError, ValueError) as error:
        raise SettingsError(f"these settings cannot be written into the PNG metadata: {error}") from None


def writable_folder(save_to) -> Path:
    """`save_to` as a folder that exists (made if need be) and can be written, or a SettingsError saying why not."""
    if not isinstance(save_to, (str, os.PathLike)):
        raise wrong_type("save_to", "a folder path (text or pathlib.Path) or None", save_to)
    folder = Path(save_to)
    if folder.exists() and not folder.is_dir():
        raise SettingsError(f"save_to {str(folder)!r} is a file, not a folder: choose a folder for the pictures")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingsError(f"save_to {str(folder)!r} cannot be created: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SettingsError(f"save_to {str(folder)!r} is not writable: choose another folder")
    return folder


def save_batch(result, count: int, save_to) -> None:
    """Save the last `count` pictures of `result` to `save_to` (metadata.py), keeping them if the disk fails."""
    from ..errors import SaveError
    from ..metadata import save_image

    new = range(len(result.images) - count, len(result.images))
    try:
        result.paths += [save_image(result, i, save_to) for i in new]
    except OSError as error:  # a full disk, a folder removed meanwhile: keep the pictures
        raise SaveError(
            f"could not save to {save_to}: {error}; the {len(result.images)} finished picture(s) are in this error's .result",
            result,
        ) from error
