"""The ``weave`` console script: the collector is off for the CLI's short life.

``weave`` is short-lived and its start-up is mostly imports, which the cyclic collector
would rescan over and over (about a fifth of the import time); ``weave launch`` forks
the router from this process, and the router turns the collector back on once it has
started (daemon._tune_gc). Imported here first, so that the CLI's own imports are covered.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from weavenet.cli.main import main as weave

    weave()
