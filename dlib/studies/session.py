"""The Ray Tune callbacks of a study run: a per-session trial limit and a progress bar.

They live at module level (pickled by reference), because Ray pickles them with the experiment
and a restored experiment must read the *new* command's settings from :data:`SESSION`, which
the driver sets before each run.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from ray import tune

from dlib import config as _config

__all__ = ["SESSION", "SessionLimit", "TrialBar"]

#: this driver session's settings (set by :func:`dlib.studies.run` before ``Tuner.fit``)
SESSION: dict[str, Any] = {"max_trials": None}


class SessionLimit(tune.Callback):
    """Interrupts the run once ``SESSION["max_trials"]`` trials have finished in this session,
    the way Ctrl+C or a scheduler's SIGUSR1 does: Tune saves the experiment with the other
    trials unfinished (running ones keep their last checkpoint), and the next run restores
    them. (A stopper's ``stop_all`` would mark them terminated instead.)"""

    def __init__(self) -> None:
        self.finished: set[str] = set()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        limit = SESSION.get("max_trials")
        if not result.get("finished") or trial.trial_id in self.finished:
            return
        self.finished.add(trial.trial_id)
        if limit is not None and len(self.finished) == limit and hasattr(signal, "SIGUSR1"):
            os.kill(os.getpid(), signal.SIGUSR1)  # Tune's own "interrupt the run" signal

    def __getstate__(self) -> dict[str, Any]:
        return {"finished": set()}  # a restored experiment counts its own session


class TrialBar(tune.Callback):
    """A tqdm bar of finished trials (notebooks; Ray's table goes to the terminal)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if self.bar is None:
            self.bar = _config.progress(total=len(trials), desc="trials")
        if result.get("finished"):
            self.bar.update(1)

    def __getstate__(self) -> dict[str, Any]:
        return {"bar": None}
