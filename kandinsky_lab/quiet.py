"""Quiet loading: no "Loading …" bars and no warnings from diffusers and transformers inside a block.

Loading the model from local files takes a second; the libraries' bars and notes (e.g. transformers'
"`CLIPImageProcessor` requires torchvision (not installed)…", harmless: it falls back to the PIL
processor) would only fill a notebook's load cell with red boxes. A hub download keeps its bar:
hub.py fetches the files before anything loads inside this block.

    with quiet_loading():
        pipe = KandinskyV22Pipeline.from_pretrained(folder)
"""

from contextlib import contextmanager

import diffusers
import transformers


@contextmanager
def quiet_loading():
    """Errors only and no progress bars from diffusers and transformers inside the block; their settings are back after it."""
    logs = [diffusers.utils.logging, transformers.utils.logging]
    saved = [(log.get_verbosity(), log.is_progress_bar_enabled()) for log in logs]
    for log in logs:
        log.set_verbosity_error()
        log.disable_progress_bar()
    try:
        yield
    finally:
        for log, (verbosity, bars) in zip(logs, saved):
            log.set_verbosity(verbosity)
            if bars:
                log.enable_progress_bar()
