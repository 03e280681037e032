"""Run one generation at a time on a worker thread, so the kernel stays free to hear the Stop button.

A button callback runs on the kernel's main thread; if it generated there, a click on Stop would
wait in the queue until the picture was done. The Runner starts the work on a thread and returns at
once. No ipywidgets here: the panel passes plain callables for what to do with the result or error.
"""

import threading
import traceback
from collections.abc import Callable

from ..steps import StopSignal


class Runner:
    def __init__(self):
        self.stop = StopSignal()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, work: Callable, on_done: Callable, on_error: Callable[[Exception, str], None], on_finally: Callable) -> None:
        """Call `work(stop)` on a thread, then `on_done(result)` or `on_error(error, traceback)`, then `on_finally()`."""
        if self.busy:
            raise RuntimeError("a generation is already running: press Stop or wait for it")
        self.stop.clear()

        def target():
            try:
                on_done(work(self.stop))
            except Exception as error:  # shown in the panel; nothing is lost
                on_error(error, traceback.format_exc())
            finally:
                on_finally()

        self._thread = threading.Thread(target=target, name="kandinsky-lab generation", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ends (for tests and scripts); True if it ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.busy
