"""`vaekit tune report`: the trials table stays valid Markdown, written to a pipe or not."""

import subprocess
import sys

import optuna
import pytest

from vaekit.tune import report
from vaekit.tune.study import open_study


@pytest.fixture
def storage(tmp_path):
    """A study of two trials: one with long parameter values, one that failed with a
    message holding a pipe and a line break."""
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    study = open_study(url, "wide", {}, "digits")
    space = {f"model.a_rather_long_parameter_name_{i}": optuna.distributions.FloatDistribution(0.0, 1.0)
             for i in range(4)}
    params = {name: 0.123456789 for name in space}
    study.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=97.5))
    study.add_trial(optuna.trial.create_trial(params=params, distributions=space, state=optuna.trial.TrialState.FAIL,
                                              user_attrs={"error": "DataError: a | b\nsecond line"}))
    return url


def _check_rows(lines: list[str], columns: int) -> None:
    for line in lines:
        assert line.startswith("|") and line.endswith("|"), line
        assert line.replace("\\|", "").count("|") == columns + 1, line


def test_report_rows_hold_every_cell_on_one_line(storage):
    lines = report(storage, "wide").splitlines()
    _check_rows(lines[2:], 4 + 5)
    assert "a \\| b second line" in lines[-1]


def test_report_written_to_a_pipe_is_not_wrapped(storage):
    out = subprocess.run([sys.executable, "-m", "vaekit", "tune", "report", "--storage", storage, "--study", "wide"],
                         capture_output=True, text=True, env={"PATH": "", "VAEKIT_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 6 and max(map(len, lines[2:])) > 150
    _check_rows(lines[2:], 4 + 5)
