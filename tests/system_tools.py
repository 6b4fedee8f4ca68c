"""Debian tools the tests drive from outside Python (chromium, promtool).

`scripts/ensure-system-deps.sh` installs them; `make test` runs it when it
runs as root, and `.ci/run` always does. A missing tool fails the test under
CI=true (a CI run that skipped the browser or the alert rules would be green
and prove nothing); elsewhere it skips with a reason that says what to install.
"""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL_HINT = "sudo scripts/ensure-system-deps.sh (or: apt-get install {package})"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_tool(command: str, package: str) -> str:
    """The absolute path of `command`; fails under CI, else skips, when missing."""
    path = shutil.which(command)
    if path:
        return path
    message = (f"`{command}` not found on PATH (Debian package `{package}`); install it with "
               + INSTALL_HINT.format(package=package))
    if in_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(f"SKIPPED, NOT TESTED: {message}")
