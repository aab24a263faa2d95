"""Generate an R2R-CE-style VLN dataset over procedural houses.

Usage::

    python -m envs.datasets.generate --out data/navgym_r2r --preset default
    python -m envs.datasets.generate --out DIR --n-scenes 12 --episodes-per-scene 8 --unseen-fraction 0.25

Layout of ``DIR`` (VLN-CE's, so :func:`envs.datasets.r2r.load_episodes` and VLN-CE tools read it)::

    scenes/house_00012.glb  (+ the JSON annotation sidecar written by envs.scenes.io.save_scene)
    {train,val_seen,val_unseen,test}/{split}.json.gz  and  {split}_gt.json.gz
    info.json               the arguments, per split its scenes and episode count, the format version and
                            the dataset's digest (:mod:`envs.datasets.digest`)
    .work/                  manifest and per-scene intermediate results (what makes a run resumable)

``scene_id`` is relative to ``DIR/scenes`` (``"house_00012.glb"``): read a split with
``load_episodes(DIR / "train", scenes_dir=DIR / "scenes")``.

**Splits.** Scenes ``0 .. n_train-1`` are training scenes: each gives ``episodes_per_scene`` train episodes
and ``val_seen_per_scene`` different val_seen episodes (new paths in seen houses). The ``n_unseen`` remaining
scenes are split in two disjoint halves, val_unseen first, then test, each giving ``episodes_per_scene``
episodes. One vocabulary built from the train instructions is stored in every split (VLN-CE shares one; words
missing from it map to UNK). Episode ids are integers, unique within a split, numbered in scene order.

**Determinism and resumability.** Scene ``k``'s house and episodes come from seeds derived from the master
seed with ``np.random.SeedSequence(seed, spawn_key=(k, ...))``, so the same arguments give byte-identical
files and adding scenes does not change the others. Each scene's episodes are written atomically (temporary
file + ``os.replace``) to ``.work/scene_XXXXX.json.gz`` once its house is saved; a rerun with the same
arguments skips finished scenes, and the split files are written last, each atomically. A rerun with different
arguments on the same folder fails with a message naming the differences.

**Presets.** ``small``: 12 scenes (8 training, 2 val_unseen, 2 test), 6 train + 2 val_seen episodes per
training scene, 6 per unseen scene: 48 train, 16 val_seen, 12 val_unseen, 12 test episodes (demos, tests;
about 11 CPU-seconds). ``default``: 120 scenes (100 training, 10 val_unseen, 10 test), 20 train + 2 val_seen
episodes per training scene, 20 per unseen scene: 2,000 train, 200 val_seen, 200 val_unseen, 200 test
episodes, 29 MB (measured: 216 CPU-seconds, so about 2 minutes with ``--workers 2`` on two idle cores).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
from pathlib import Path

from tqdm import tqdm

from envs.datasets.digest import digest_record
from envs.datasets.episodes import EpisodeConfig
from envs.datasets.r2r import GroundTruthPath, Instruction, R2RDataset, VLNEpisode, save_episodes
from envs.datasets.scene_work import (
    FORMAT_VERSION,
    DatasetSpec,
    build_scene,
    is_scene_done,
    json_bytes,
    load_scene_record,
    remove_stale_temporaries,
    work_dir,
)
from envs.datasets.vocab import Vocabulary
from envs.fileio import atomic_write

logger = logging.getLogger(__name__)

SPLITS = ("train", "val_seen", "val_unseen", "test")
PRESETS = {
    "small": {"n_scenes": 12, "episodes_per_scene": 6, "unseen_fraction": 1 / 3, "val_seen_per_scene": 2},
    "default": {"n_scenes": 120, "episodes_per_scene": 20, "unseen_fraction": 1 / 6, "val_seen_per_scene": 2},
}
#: Measured generation cost of each preset on one core (for the help text).
PRESET_CPU_SECONDS = {"small": 11, "default": 216}


def _build_task(task: tuple[Path, DatasetSpec, int]) -> int:
    build_scene(*task)
    return task[2]


def check_manifest(out: Path, spec: DatasetSpec) -> None:
    """Refuse a folder made with other arguments (or holding other files); record the manifest."""
    manifest = work_dir(out) / "manifest.json"
    wanted = json.loads(json.dumps(spec.to_dict()))
    if not manifest.exists():
        others = sorted(p.name for p in out.iterdir() if p.name != ".work") if out.is_dir() else []
        if others:
            raise ValueError(
                f"{out} holds files ({', '.join(others[:5])}) but no {manifest.relative_to(out)}: "
                "choose an empty or new --out"
            )
        # Concurrent first runs write the same bytes; the rename is atomic.
        atomic_write(manifest, json_bytes(wanted, compress=False))
    found = json.loads(manifest.read_text())
    if found != wanted:
        diff = sorted(k for k in wanted.keys() | found.keys() if wanted.get(k) != found.get(k))
        detail = ", ".join(f"{k}: {found.get(k)!r} there, {wanted.get(k)!r} now" for k in diff)
        raise ValueError(
            f"{out} holds a dataset generated with other arguments ({detail}); rerun with the same "
            "arguments to resume it, or choose another --out"
        )


def _run(out: Path, spec: DatasetSpec, workers: int, progress: bool) -> None:
    todo = [k for k in range(spec.n_scenes) if not is_scene_done(out, spec, k)]
    bar = tqdm(
        total=spec.n_scenes,
        initial=spec.n_scenes - len(todo),
        desc="scenes",
        unit="scene",
        disable=not progress,
    )
    with bar:
        if workers <= 1 or len(todo) <= 1:
            for k in todo:
                build_scene(out, spec, k)
                bar.update()
            return
        # spawn: workers must not inherit a parent's GL or thread state.
        with multiprocessing.get_context("spawn").Pool(min(workers, len(todo))) as pool:
            for _ in pool.imap_unordered(_build_task, [(out, spec, k) for k in todo]):
                bar.update()


def _split_dataset(out: Path, records: list[dict], split: str, vocab: Vocabulary) -> R2RDataset:
    """A split's episodes from the per-scene results, numbered in scene order, tokenised with ``vocab``."""
    episodes: list[VLNEpisode] = []
    gt: dict[str, GroundTruthPath] = {}
    for record in records:
        part = record["splits"].get(split, {"episodes": []})
        for raw in part["episodes"]:
            new_id = str(len(episodes))
            where = str(work_dir(out) / f"{record['scene']}")
            gt[new_id] = GroundTruthPath.from_dict(part["gt"][raw["episode_id"]], where, new_id)
            episode = VLNEpisode.from_dict({**raw, "episode_id": new_id, "trajectory_id": new_id}, where)
            text = episode.instruction.instruction_text
            episode.instruction = Instruction(text, vocab.encode(text))
            episodes.append(episode)
    return R2RDataset(episodes, vocab, gt)


def _assemble(out: Path, spec: DatasetSpec) -> dict[str, Path]:
    """Write the four split files (last, each atomically), then ``info.json`` with the digest of the files."""
    records = [load_scene_record(out, k) for k in range(spec.n_scenes)]
    train = [ep for r in records for ep in r["splits"].get("train", {}).get("episodes", [])]
    vocab = Vocabulary.build(ep["instruction"]["instruction_text"] for ep in train)
    paths, info = {}, {"spec": spec.to_dict(), "scenes_dir": "scenes", "splits": {}}
    for split in SPLITS:
        paths[split] = save_episodes(_split_dataset(out, records, split, vocab), out, split)
        scenes = [f"{r['scene']}.glb" for r in records if split in r["splits"]]
        n_episodes = sum(len(r["splits"][split]["episodes"]) for r in records if split in r["splits"])
        info["splits"][split] = {"episodes": n_episodes, "scenes": scenes}
    info.update(format_version=FORMAT_VERSION, **digest_record(out))
    atomic_write(out / "info.json", json_bytes(info, compress=False))
    return paths


def generate_dataset(
    out: str | Path,
    n_scenes: int,
    episodes_per_scene: int,
    seed: int = 0,
    n_unseen_scenes: int | None = None,
    unseen_fraction: float = 0.2,
    val_seen_per_scene: int = 2,
    episode_config: EpisodeConfig | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Path]:
    """Generate (or resume) a dataset in ``out`` (layout, splits and guarantees: the module docstring).

    Args:
        out: output folder (new, empty, or an interrupted run of the same arguments).
        n_scenes: number of houses.
        episodes_per_scene: train episodes per training scene and episodes per unseen scene.
        seed: master seed.
        n_unseen_scenes: scenes kept for val_unseen + test (default ``round(unseen_fraction * n_scenes)``).
        unseen_fraction: used when ``n_unseen_scenes`` is None.
        val_seen_per_scene: val_seen episodes per training scene.
        episode_config: episode sampling settings (default :class:`EpisodeConfig`).
        workers: processes generating scenes in parallel.
        progress: show a progress bar over scenes.

    Returns:
        ``{split: path of {split}.json.gz}``.

    Raises:
        ValueError: bad arguments, or ``out`` holds a dataset of other arguments or unrelated files.
    """
    if n_unseen_scenes is None:
        if not 0.0 <= unseen_fraction < 1.0:
            raise ValueError(f"unseen_fraction must be in [0, 1), got {unseen_fraction}")
        n_unseen_scenes = int(round(unseen_fraction * n_scenes))
    spec = DatasetSpec(
        n_scenes,
        episodes_per_scene,
        seed,
        n_unseen_scenes,
        val_seen_per_scene,
        episode_config or EpisodeConfig(),
    )
    out = Path(out)
    check_manifest(out, spec)
    remove_stale_temporaries(out)
    _run(out, spec, workers, progress)
    paths = _assemble(out, spec)
    logger.info("dataset written to %s: %s", out, {s: str(p) for s, p in paths.items()})
    return paths


def _preset_help() -> str:
    parts = []
    for name, p in PRESETS.items():
        n_unseen = round(p["n_scenes"] * p["unseen_fraction"])
        parts.append(
            f"{name} = {p['n_scenes']} scenes ({p['n_scenes'] - n_unseen} training, {n_unseen} unseen), "
            f"{p['episodes_per_scene']} episodes per scene + {p['val_seen_per_scene']} val_seen per "
            f"training scene (about {PRESET_CPU_SECONDS[name]} CPU-seconds)"
        )
    return "; ".join(parts)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m envs.datasets.generate",
        description="Generate an R2R-CE-style VLN dataset over procedural houses. Rerun the same command to "
        f"resume an interrupted run. Presets: {_preset_help()}.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or a run to resume)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="sizes to start from (default: 'default' unless "
        "--n-scenes is given); explicit options override it",
    )
    p.add_argument("--n-scenes", type=int, help="number of houses")
    p.add_argument(
        "--episodes-per-scene", type=int, help="train episodes per training scene / per unseen scene"
    )
    p.add_argument("--val-seen-per-scene", type=int, help="val_seen episodes per training scene (default 2)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument(
        "--unseen-fraction", type=float, help="fraction of scenes for val_unseen + test (default 0.2)"
    )
    p.add_argument(
        "--min-geodesic", type=float, default=EpisodeConfig.min_geodesic, help="metres (default 3)"
    )
    p.add_argument(
        "--max-geodesic", type=float, default=EpisodeConfig.max_geodesic, help="metres (default 15)"
    )
    workers = max(1, min(4, os.cpu_count() or 1))
    p.add_argument(
        "--workers",
        type=int,
        default=workers,
        help=f"processes generating scenes (default {workers}, the CPUs)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see ``--help``)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    preset = PRESETS[args.preset or "default"] if args.preset or args.n_scenes is None else {}
    keys = ("n_scenes", "episodes_per_scene", "unseen_fraction", "val_seen_per_scene")
    chosen = {k: getattr(args, k) for k in keys}
    settings = {**preset, **{k: v for k, v in chosen.items() if v is not None}}
    if "episodes_per_scene" not in settings:
        raise SystemExit("error: --episodes-per-scene is required with --n-scenes and no --preset")
    try:
        generate_dataset(
            args.out,
            seed=args.seed,
            workers=args.workers,
            progress=not args.no_progress,
            episode_config=EpisodeConfig(min_geodesic=args.min_geodesic, max_geodesic=args.max_geodesic),
            **settings,
        )
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
