"""Quiet loading: no "Loading …" bars and no warnings from diffusers and transformers inside a block.

Loading the model from local files takes a second; the libraries' bars and notes (e.g. transformers'
"`CLIPImageProcessor` requires torchvision (not installed)…", harmless: it falls back to the PIL
processor) would only fill a notebook's load cell with red boxes. A hub download keeps its bar:
hub.py fetches the files before anything loads inside this block.

    with quiet_loading():
        pipe = KandinskyV22Pipeline.from_pretrained(folder)

And no second truncation warning: a prompt longer than CLIP reads gets the kit's own one-line note, printed
before the run and kept in the result's notes (tasks/runner.announce, embeddings.truncation_notes); diffusers' prior pipelines would also print their warning,
with the whole cut-off text (a 1 MB prompt, 1 MB in the notebook), and transformers its "Token indices
sequence length is longer…" for the pipeline's own untruncated tokenizing.

    with no_truncation_warning():
        out = kit.prior(prompt, …)
"""

import logging
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


# the loggers that warn of a prompt longer than CLIP reads while a prior pipeline runs, and how their warnings start
TRUNCATION_WARNINGS = {
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_prior": "The following part of your input was truncated",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_prior_emb2emb": "The following part of your input was truncated",
    "transformers.tokenization_utils_base": "Token indices sequence length is longer than",
}


class _NoTruncationWarning(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


@contextmanager
def no_truncation_warning():
    """Drop the prior pipelines' truncation warning inside the block (the kit's note says it); every other warning stays."""
    filters = [(logging.getLogger(name), _NoTruncationWarning(start)) for name, start in TRUNCATION_WARNINGS.items()]
    for logger, dropped in filters:
        logger.addFilter(dropped)
    try:
        yield
    finally:
        for logger, dropped in filters:
            logger.removeFilter(dropped)
