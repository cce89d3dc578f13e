#!/usr/bin/env python3
"""Are the lock files current? Every requirement of pyproject.toml (the runtime dependencies and
the extras each lock covers) must be pinned in the lock at a version it allows, every pin must
carry hashes, and a package pinned in both locks must have the same version in both.

`make setup` runs this before it installs, so a dependency added to pyproject.toml without
`make lock` stops the build with a message saying so, instead of a venv that lacks it.
Standard library only (plus the `packaging` that pip vendors): it runs before the venv exists.
Exit status 1, naming every problem, when a lock is stale.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a bare interpreter: pip always vendors packaging
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {
    "requirements-dev.lock": ("otel", "local", "dev"),
    "requirements.lock": ("otel",),
}
"""Each lock file and the extras of pyproject.toml it covers (besides the runtime dependencies)."""

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def pins(text: str) -> tuple[dict[str, str], list[str]]:
    """name → pinned version, and the names whose pin has no hash."""
    found: dict[str, str] = {}
    unhashed: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _PIN.match(line)
        if not match:
            continue
        name = canonicalize_name(match.group(1))
        found[name] = match.group(2)
        block = [line]
        for follower in lines[index + 1:]:
            if not follower.startswith((" ", "\t")):
                break
            block.append(follower)
        if "--hash=sha256:" not in "\n".join(block):
            unhashed.append(name)
    return found, unhashed


def requirements(project: dict, extras: tuple[str, ...]) -> list[Requirement]:
    name = canonicalize_name(project["name"])
    wanted = [Requirement(r) for r in project.get("dependencies", [])]
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        wanted += [Requirement(r) for r in optional.get(extra, [])]
    return [r for r in wanted if canonicalize_name(r.name) != name]  # `encore[local]`: the extras are listed


def problems(root: Path = ROOT) -> list[str]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    found: list[str] = []
    pinned_in: dict[str, dict[str, str]] = {}
    for lock, extras in LOCKS.items():
        path = root / lock
        if not path.is_file():
            found.append(f"{lock} is missing")
            continue
        locked, unhashed = pins(path.read_text())
        pinned_in[lock] = locked
        found += [f"{lock}: {name} has no --hash" for name in unhashed]
        for requirement in requirements(project, extras):
            if requirement.marker is not None and not requirement.marker.evaluate():
                continue
            version = locked.get(canonicalize_name(requirement.name))
            if version is None:
                found.append(f"{lock}: {requirement} (pyproject.toml) is not in it")
            elif requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
                found.append(f"{lock}: {requirement.name}=={version} does not satisfy {requirement} "
                             "(pyproject.toml)")
    if len(pinned_in) == len(LOCKS):
        dev, image = pinned_in["requirements-dev.lock"], pinned_in["requirements.lock"]
        for name in sorted(set(dev) & set(image)):
            if dev[name] != image[name]:
                found.append(f"{name} is {image[name]} in requirements.lock but {dev[name]} in "
                             "requirements-dev.lock")
        for name in sorted(set(image) - set(dev)):
            found.append(f"{name} is in requirements.lock but not in requirements-dev.lock")
    return found


def main() -> int:
    found = problems()
    if not found:
        return 0
    print("The lock files do not match pyproject.toml:", file=sys.stderr)
    for problem in found:
        print(f"  - {problem}", file=sys.stderr)
    print("Refresh them with `make lock` (README, \"Reproducible installs\") and commit them.",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
