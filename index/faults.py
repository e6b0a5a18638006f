"""Named pause points for crash tests: a test sets NEWSBOT_FAULT_PAUSE=<name>, waits for the
"paused at <name>" line on stderr, then SIGKILLs the process at exactly that point of a build or update.
Unset (always, outside tests), `checkpoint` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time


def checkpoint(name: str) -> None:
    if os.environ.get("NEWSBOT_FAULT_PAUSE") == name:
        print(f"newsbot: paused at {name}", file=sys.stderr, flush=True)
        time.sleep(3600)
