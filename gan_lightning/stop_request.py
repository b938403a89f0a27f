"""SIGTERM honoured outside Lightning's loop. Lightning notices it only between batches: long work before the loop
(reading the data) or in a callback (the image metrics, the first training of their classifier) would carry on for
minutes after it, until a scheduler's SIGKILL ends the process with nothing written. Inside this context SIGTERM
raises Lightning's ``SIGTERMException`` at once, which ``train()`` reports as an interrupted run."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lightning.pytorch.utilities.exceptions import SIGTERMException


@contextmanager
def sigterm_stops_at_once(already_requested: bool = False) -> Iterator[None]:
    """Raise SIGTERMException on SIGTERM inside the block (now, when ``already_requested``: e.g.
    ``trainer.received_sigterm`` from a SIGTERM during the last batch). Signal handlers belong to the main thread:
    elsewhere the block runs unchanged."""
    if already_requested:
        raise SIGTERMException
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame) -> None:
        raise SIGTERMException

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
