"""Run the test suite, guarding only against the SDK's rare crash at exit.

The Temporal SDK can crash while the interpreter shuts down
(`PyGILState_Release`, sdk-python issue 300). pytest records its own verdict in
a status file at session finish, before shutdown starts. If the process then
dies of a signal, the recorded verdict decides; any other non-zero exit, or a
crash before pytest finished, fails the run as usual. So a green run cannot be
failed by the crash, and a real failure cannot be hidden by the guard.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        status_file = Path(tmp) / "pytest-status"
        env = dict(os.environ, SEATFLOW_PYTEST_STATUS_FILE=str(status_file))
        args = [sys.executable, "-m", "pytest", *sys.argv[1:]]
        proc = subprocess.run(args, cwd=root, env=env, check=False)
        code = proc.returncode
        recorded = status_file.read_text().strip() if status_file.exists() else None
    if code < 0 or code in (134, 139):
        if recorded == "0":
            print(
                f"tests/run.py: pytest passed (recorded exit 0) but the interpreter "
                f"crashed at exit (code {code}); known SDK issue, treating as success",
                file=sys.stderr,
            )
            return 0
        print(f"tests/run.py: pytest crashed (code {code}, recorded {recorded})", file=sys.stderr)
        return 1 if code < 0 else code
    return code


if __name__ == "__main__":
    sys.exit(main())
