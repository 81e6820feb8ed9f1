"""Studies: every long run of the book, declared once and run on Ray Tune.

A study is a name, a grid (method × hyperparameters × seeds × dataset), a scale and what to
compute (:mod:`dlib.studies.declarations`); one trainable trains and evaluates every model
(:mod:`dlib.studies.trainable`, evaluators in :mod:`dlib.studies.evaluators`); Ray runs the
trials, locally by default or on a cluster (:mod:`dlib.studies.runner`); chapters read the
exported results with :func:`load` (:mod:`dlib.studies.reading`)::

    python -m dlib.studies list
    python -m dlib.studies run beta_vae --scale full        # resumes when run again
    python -m dlib.studies status beta_vae --scale full
    python -m dlib.studies export beta_vae --scale full     # → book/results/beta_vae/
"""

from dlib.studies.declarations import DEFT_PAPER_TABLE2, STUDIES, Arm, Study, get, setting_key
from dlib.studies.evaluators import EVALUATORS, FAILURE_MIG, Evaluator
from dlib.studies.reading import StudyResult, load, missing_message, spearman
from dlib.studies.runner import command, default_scale, experiment_path, export, run, status

__all__ = ["DEFT_PAPER_TABLE2", "STUDIES", "Arm", "Study", "get", "setting_key", "EVALUATORS",
           "Evaluator", "FAILURE_MIG", "StudyResult", "load", "missing_message", "spearman",
           "command", "default_scale", "experiment_path", "export", "run", "status"]
