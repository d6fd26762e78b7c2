"""cProfile every interpreter started with REFEX_BENCH_CPROFILE_DIR set (when py-spy is missing).

`bench/profiles.py` puts this folder on PYTHONPATH of the services it starts; each writes
<dir>/<pid>.prof when it exits normally, and the bench renames it after its service.
"""

import atexit
import cProfile
import os
from pathlib import Path

_DIR = os.environ.get("REFEX_BENCH_CPROFILE_DIR")

if _DIR:
    _profile = cProfile.Profile()
    _profile.enable()

    def _dump() -> None:
        _profile.disable()
        _profile.dump_stats(str(Path(_DIR) / f"{os.getpid()}.prof"))

    atexit.register(_dump)
