"""The VLN benchmark: an agent over a fixed list of R2R-CE episodes (``NavGym/VLN-v0``, VLN-CE measures).

The episode list, files and registry are :mod:`benchmarks.base`'s; ``vln_val_seen``, ``vln_val_unseen`` and
``vln_test`` are registered there.
"""

from __future__ import annotations

from benchmarks.base import EpisodeBenchmark

#: The R2R-CE measures every VLN summary averages (VLN-CE definitions, anchors Part B §1.8).
VLN_METRICS = (
    *("success", "spl", "oracle_success", "navigation_error", "oracle_navigation_error"),
    *("ndtw", "sdtw", "path_length", "steps", "collisions", "distance_to_goal"),
)


class VLNBenchmark(EpisodeBenchmark):
    """R2R-CE vision-and-language navigation (``NavGym/VLN-v0``, discrete actions, VLN-CE measures)."""

    tasks = ("vln",)
