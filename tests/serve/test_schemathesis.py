"""A bounded Schemathesis run against the live server's own OpenAPI spec: no 5xx, no
response outside the spec, invalid requests refused and valid ones accepted.
(``benchmarks/schemathesis_run.py`` runs the same with more examples.)"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_schemathesis_finds_nothing(live, tmp_path):
    st = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(st).exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    report = tmp_path / "report.json"
    out = subprocess.run([st, "run", f"{live.url}/openapi.json", "--checks", "all", "--max-examples", "5",
                          "--seed", "1", "--workers", "1", "--report", "json", "--report-json-path", str(report)],
                         capture_output=True, text=True, timeout=600)
    result = json.loads(report.read_text())
    assert result["operations"]["tested"] >= 20, out.stdout[-3000:]
    assert result["failures"] == [] and result["errors"] == [], out.stdout[-6000:]
