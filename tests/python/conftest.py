"""Shared pytest fixtures: the qlake binary and a runner for it.

The binary is $QLAKE_BIN (set by `make test`) or build/qlake in the repository.
"""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def qlake_path() -> Path:
    p = Path(os.environ.get("QLAKE_BIN", REPO / "build" / "qlake"))
    if not p.exists():
        raise RuntimeError(f"qlake binary not found at {p}; run `make build` first")
    return p


@pytest.fixture(scope="session")
def qlake_bin() -> Path:
    return qlake_path()


@pytest.fixture
def run_qlake(qlake_bin, tmp_path):
    """run_qlake(*args, env=None, check=True, cwd=None) -> CompletedProcess (text mode).

    The environment is isolated: HOME and XDG_CONFIG_HOME point into tmp_path so a developer's
    own config never leaks into a test, and QLAKE_* variables are dropped unless passed in env.
    """

    def run(*args, env=None, check=True, cwd=None, timeout=600):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
        base["HOME"] = str(tmp_path / "home")
        base["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
        if env:
            base.update(env)
        proc = subprocess.run(
            [str(qlake_bin), *map(str, args)],
            capture_output=True,
            text=True,
            env=base,
            cwd=cwd or tmp_path,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"qlake {' '.join(map(str, args))} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture(scope="session")
def query_lakes(qlake_bin, tmp_path_factory):
    """{"daily": Path, "original": Path}: the same synthetic data in both lake layouts."""
    from query_lakes import build_lakes

    return build_lakes(qlake_bin, tmp_path_factory.mktemp("query_lakes"))


@pytest.fixture(scope="session")
def qlake_module():
    """The Python module as built by CMake (build/python, or $QLAKE_PYTHONPATH)."""
    import sys

    path = Path(os.environ.get("QLAKE_PYTHONPATH", REPO / "build" / "python"))
    if not (path / "qlake").exists():
        pytest.fail(f"the qlake Python module is not built at {path}; run `make build`")
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    import qlake

    return qlake


@pytest.fixture(scope="module")
def s3():
    """A real S3 server (moto's server mode) on 127.0.0.1, one per test module."""
    from s3util import MotoS3

    server = MotoS3()
    yield server
    server.stop()
