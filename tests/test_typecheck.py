"""The package type-checks: mypy, configured in ``pyproject.toml`` ([tool.mypy]), reports nothing.

The config sets ``warn_unused_ignores``, so every ``# type: ignore`` in the package is checked too:
one that no longer hides an error fails this test. mypy comes with the ``test`` extra, so a missing
mypy is a broken test environment and fails here rather than skipping.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_reports_no_errors():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert "No module named mypy" not in output, (
        "mypy is not installed; install the test extra: pip install -e '.[test]'"
    )
    assert result.returncode == 0, f"mypy found errors:\n{output}"
