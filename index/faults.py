"""Named pause points for crash tests: a test sets NEWSBOT_FAULT_PAUSE=<name>, waits for the
"paused at <name>" line on stderr, then SIGKILLs the process at exactly that point of a build or update.

With NEWSBOT_FAULT_RESUME=<path> as well, the paused process goes on as soon as that file exists
(tests use it to hold a rebuild half-way, check what readers see, then let it finish).
Unset (always, outside tests), `checkpoint` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def checkpoint(name: str) -> None:
    """Pause here when the environment names this point (see the module doc); otherwise return at once."""
    if os.environ.get("NEWSBOT_FAULT_PAUSE") == name:
        print(f"newsbot: paused at {name}", file=sys.stderr, flush=True)
        resume = os.environ.get("NEWSBOT_FAULT_RESUME")
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            if resume and Path(resume).exists():
                print(f"newsbot: resumed at {name}", file=sys.stderr, flush=True)
                return
            time.sleep(0.05)
