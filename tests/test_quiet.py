"""TensorFlow's start-up log lines stay hidden after ``import tomoseg_nb``, unless asked for.

Each case runs a fresh interpreter, since the lines are printed once, by C++ code, when TensorFlow
first loads. A stand-in ``tensorflow`` package that writes such lines straight to file descriptor 2
(as TensorFlow's C++ runtime does) makes the cases exact; one case loads the real Keras.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tomoseg_nb import _quiet

NOISE = "I0000 00:00:1.0 cudart_stub.cc:31] Could not find cuda drivers on your machine"
FAKE_TENSORFLOW = f"""
import os
os.write(2, {(NOISE + chr(10)).encode()!r})
if os.environ.get("FAKE_TENSORFLOW_BREAKS"):
    raise ImportError("libcudart.so: cannot open shared object file")
"""


def _run(
    code: str,
    *argv: str,
    env: dict[str, str] | None = None,
    fake: Path | None = None,
) -> subprocess.CompletedProcess:
    """``python -c code *argv`` in a user's environment (without the tests' log settings)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in (_quiet.LOG_LEVEL_VARIABLE, _quiet.VERBOSE_VARIABLE)
    }
    if fake is not None:
        environment["PYTHONPATH"] = str(fake)
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
        timeout=300,
    )


@pytest.fixture
def fake_tensorflow(tmp_path) -> Path:
    package = tmp_path / "fake" / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_TENSORFLOW)
    return package.parent


def test_tensorflow_lines_are_hidden_and_the_log_level_defaults_to_quiet(fake_tensorflow):
    code = "import os, tomoseg_nb, tensorflow; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    result = _run(code, fake=fake_tensorflow)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == "3\n"


@pytest.mark.parametrize(
    "env",
    [{"TF_CPP_MIN_LOG_LEVEL": "0"}, {"TOMOSEG_NB_VERBOSE": "1"}],
    ids=["users-log-level-0", "verbose-variable"],
)
def test_a_users_setting_brings_the_lines_back(fake_tensorflow, env):
    result = _run("import os, tomoseg_nb, tensorflow", env=env, fake=fake_tensorflow)
    assert result.returncode == 0, result.stderr
    assert result.stderr == NOISE + "\n"


def test_a_users_log_level_is_kept(fake_tensorflow):
    code = "import os, tomoseg_nb, tensorflow; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    result = _run(code, env={"TF_CPP_MIN_LOG_LEVEL": "1"}, fake=fake_tensorflow)
    assert (result.stdout, result.stderr) == ("1\n", "")


@pytest.mark.parametrize(
    ("flags", "shown"),
    [((), []), (("--verbose",), [NOISE])],
    ids=["default", "verbose"],
)
def test_the_cli_verbose_flag_brings_the_lines_back(fake_tensorflow, tmp_path, flags, shown):
    code = "import sys\nfrom tomoseg_nb.cli import main\nmain(sys.argv[1:])\nimport tensorflow\n"
    argv = ("segment", str(tmp_path / "none.mrc"), "--model", "m.keras", "--out", str(tmp_path))
    for placed in ((*flags, *argv), (*argv, *flags)):  # before or after the sub-command
        result = _run(code, *placed, fake=fake_tensorflow)
        lines = result.stderr.splitlines()
        assert lines[0] == "tomoseg-nb segment: error: m.keras: no such model file", lines
        assert lines[1:] == shown


def test_a_failing_import_shows_what_it_printed(fake_tensorflow):
    result = _run(
        "import tomoseg_nb, tensorflow", env={"FAKE_TENSORFLOW_BREAKS": "1"}, fake=fake_tensorflow
    )
    assert result.returncode == 1
    assert result.stderr.startswith(NOISE + "\n")
    assert "ImportError: libcudart.so" in result.stderr


def test_loading_keras_prints_nothing():
    result = _run(
        "import tomoseg_nb.models, keras; keras.ops.convert_to_numpy(keras.ops.ones(2) + 1)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
