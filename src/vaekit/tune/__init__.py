"""Hyperparameter search on Optuna with a real database (``vaekit tune``), and run comparison.

- :mod:`vaekit.tune.objectives`: what a trial trains and measures, per application;
- :mod:`vaekit.tune.study`: the study (storage, search space, workers, Ctrl-C);
- :mod:`vaekit.tune.folder`: the study's ``--out`` folder (``STUDY.json``, ``best/``);
- :mod:`vaekit.tune.report`: the trials table, Optuna's plots, ``vaekit compare``.
"""

from vaekit.tune.objectives import APPLICATIONS, Objective, application_for, resolve_objective
from vaekit.tune.report import compare, report
from vaekit.tune.study import open_study, suggest, summary, tune, validate_space

__all__ = ["APPLICATIONS", "Objective", "application_for", "compare", "open_study", "report",
           "resolve_objective", "suggest", "summary", "tune", "validate_space"]
