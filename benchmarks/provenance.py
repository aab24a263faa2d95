"""Which data an evaluation ran on, and whether it is the data the evaluated checkpoint was trained on.

The dataset's identity is its content digest (:mod:`envs.datasets.digest`). A checkpoint names the data it
was trained on in ``training_state/dataset.json`` (a copy of its run's ``dataset.json``); older checkpoints
have only the run's file, ``<run>/dataset.json``, or none at all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envs.datasets.digest import dataset_digest, dataset_root, read_dataset_record

logger = logging.getLogger(__name__)


def trained_digest(checkpoint: str | Path | None) -> str | None:
    """The digest of the data ``checkpoint`` was trained on, or None when it does not say.

    Args:
        checkpoint: a checkpoint folder ``<run>/checkpoints/<step>`` (or an agent folder: None).
    """
    if checkpoint is None:
        return None
    checkpoint = Path(checkpoint)
    folders = [checkpoint / "training_state"]
    if checkpoint.parent.name == "checkpoints":
        folders.append(checkpoint.parent.parent)
    for folder in folders:
        record = read_dataset_record(folder)
        if record is not None:
            return record["digest"]
    return None


def dataset_fields(source: str | Path | None, checkpoint: str | Path | None) -> dict[str, Any]:
    """The summary's dataset fields of an evaluation of ``checkpoint`` on the episode file ``source``.

    Returns:
        ``{"dataset_digest": digest of the dataset folder of source (None for episodes held only in
        memory)}``, plus ``"dataset_mismatch": {"trained": digest, "evaluated": digest}`` when the checkpoint
        was trained on data with another digest (also logged as a warning).
    """
    root = dataset_root(source)
    digest = dataset_digest(root) if root is not None and root.is_dir() else None
    out: dict[str, Any] = {"dataset_digest": digest}
    trained = trained_digest(checkpoint)
    if digest is not None and trained is not None and trained != digest:
        out["dataset_mismatch"] = {"trained": trained, "evaluated": digest}
        logger.warning(
            "%s was trained on dataset %s but is evaluated on %s (%s): the numbers are not those of its data",
            checkpoint,
            trained,
            digest,
            root,
        )
    return out


def _short(digest: str | None) -> str:
    return "unknown" if not digest else digest[: len("sha256:") + 12]


def dataset_lines(summaries: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Markdown lines on the data of ``(label, summary.json)`` pairs: the digest they share, and a warning
    line for each evaluation of a checkpoint trained on another dataset and for evaluations on several
    datasets (the warnings are also logged)."""
    digests = sorted({d for _, summary in summaries if (d := summary.get("dataset_digest"))})
    lines = [f"Dataset digest: `{digests[0]}`.", ""] if len(digests) == 1 else []
    warnings = []
    for label, summary in summaries:
        mismatch = summary.get("dataset_mismatch")
        if mismatch:
            warnings.append(
                f"{label} was trained on dataset `{_short(mismatch.get('trained'))}` but evaluated on "
                f"`{_short(mismatch.get('evaluated'))}`: its numbers are not those of its training data"
            )
    if len(digests) > 1:
        names = ", ".join(f"`{_short(d)}`" for d in digests)
        warnings.append(f"these evaluations ran on {len(digests)} different datasets ({names})")
    for text in warnings:
        logger.warning("dataset mismatch: %s", text.replace("`", ""))
    return lines + [line for text in warnings for line in (f"> **Warning, dataset mismatch:** {text}.", "")]
