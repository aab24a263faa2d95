"""Re-make the System-1 benchmark table (NavDP and the baselines) on today's code with one resumable command.

    python scripts/results_system1.py [--out DIR] [--preset cpu|cpu-large|tiny] [--only navdp,iplanner,...]
                                      [--planning sync|async|sync,async] [--jobs N] [--dry-run]

Stages, in order; each is a subprocess of an existing entry point and is skipped when its output is complete,
so an interrupted run continues where it stopped (``--dry-run`` lists them with their commands):

1. ``generate``: the System-1 data (``python -m envs.datasets.system1``) -> ``OUT/data``: training
   trajectories with critic labels and the three evaluation sets (``cluttered_easy``, ``cluttered_hard``,
   ``houses``); done when its ``info.json`` records the dataset digest. The ``cpu`` preset is the data of the
   README's NavDP section (30 trajectories per training scene, 30 % of them starting next to an obstacle);
   ``cpu-large`` has the same evaluation sets and three times the training scenes.
2. ``train <method>``: each trained method of :data:`METHODS` (``python trainers/run.py``) -> ``OUT/runs/
   <method>``; the imitation methods learn from the stored trajectories (``trainer=bc``, nothing collected),
   DD-PPO by PPO on the training split's point-goal episodes. Done when the run has its final evaluation
   (a short one on ``cluttered_easy``, ``eval/final/summary.json``); a run with a checkpoint is continued
   with ``resume=true``; a run folder whose ``config.yaml`` differs from today's resolved config is refused,
   naming the keys.
3. ``evaluate <method> <task> <split> <planning>``: ``benchmarks/run.py`` on every evaluation set, for every
   task the method supports (``pointnav``, ``imagenav``, ``explore``) and planning mode -> ``OUT/eval/...``;
   done when its ``summary.json`` is that of the run's latest checkpoint.
4. ``tables``: ``OUT/results/system1.md`` (one table per task and planning mode: SR / SPL per evaluation
   set, explored area for ``explore``, the share of episodes ended stuck and the mean plan latency; the
   dataset digest, the code version, the command) and ``system1.json``, from the evaluation folders alone.

With ``--jobs N`` the methods' training and evaluation chains run side by side, N at a time, longest first;
``OUT/stages.json`` records each stage's time and commit (:mod:`benchmarks.stages`). The untrained rows
(``expert``: the shortest path; ``random``) bound the table. The baselines are **trained-here variants** on
this data, not their published weights (see the README's baseline sections).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import (  # noqa: E402
    Stage,
    claim_folder,
    code_versions,
    evaluated,
    execute,
    latest_run_checkpoint,
    merge_overrides,
    pick_keys,
    plan_lines,
    read_json,
    training_done,
)
from benchmarks.tables import evaluation_inputs, format_stat, load_row  # noqa: E402
from envs.datasets.digest import dataset_identity  # noqa: E402
from envs.fileio import atomic_write  # noqa: E402
from trainers.run_folder import config_changes  # noqa: E402

logger = logging.getLogger("results")

#: The evaluation sets of the System-1 data, in the table's order.
SPLITS = ("cluttered_easy", "cluttered_hard", "houses")
#: Task -> (benchmark config, the training task its imitation data is read as).
TASKS = {"pointnav": "system1_pointnav", "imagenav": "system1_imagenav", "explore": "system1_explore"}


@dataclass(frozen=True)
class Method:
    """One row of the System-1 table.

    Attributes:
        key: its folder names and ``--only`` name.
        label: its name in the table.
        tasks: the benchmark tasks it is evaluated on (those its agent declares).
        train: ``trainers/run.py`` overrides of a trained method (empty: ``agent`` evaluated as it is).
        agent: the registry name of an untrained agent.
        rl: trained by PPO on the point-goal episodes instead of imitation of the stored trajectories.
        tiny: overrides applied after ``train`` with the tiny preset (the smoke-sized agent).
        cost: its training time relative to NavDP's (with ``--jobs`` the longest chains start first).
        run_of: the key of another method whose trained run this row evaluates (an acting variant).
        evaluate: ``benchmarks/run.py`` overrides of its evaluations: ``agent=<name>`` (a trained method's)
            then its ``agent.<field>=value`` acting settings (an evaluation made with other values is
            redone).
    """

    key: str
    label: str
    tasks: tuple[str, ...]
    train: tuple[str, ...] = ()
    agent: str | None = None
    rl: bool = False
    tiny: tuple[str, ...] = ()
    cost: float = 1.0
    run_of: str | None = None
    evaluate: tuple[str, ...] = ()


METHODS = (
    Method("expert", "expert (shortest path)", ("pointnav", "imagenav"), agent="expert"),
    # No STOP: as the learned methods, the random bound moves until arrival, stuck or the step limit (VLN's
    # random agent stops with p = 0.25 a step, which ended its System-1 episodes after 4 steps).
    Method(
        "random",
        "random (no STOP)",
        ("pointnav", "imagenav", "explore"),
        agent="random",
        evaluate=("agent.stop_probability=0",),
    ),
    Method(
        "navdp",
        "NavDP",
        ("pointnav", "imagenav", "explore"),
        ("experiment=navdp_s1", "agent=navdp"),
        tiny=("experiment=smoke_navdp", "data.action_mode=null"),
        cost=3.0,
    ),
    Method(
        "navdp-no-critic",
        "NavDP, no critic (a random sample of the 32)",
        ("pointnav",),
        run_of="navdp",
        evaluate=("agent=navdp", "agent.selection=random"),
    ),
    Method("iplanner", "iPlanner", ("pointnav",), ("agent=iplanner",), tiny=("experiment=smoke_iplanner",)),
    Method(
        "viplanner", "ViPlanner", ("pointnav",), ("agent=viplanner",), tiny=("experiment=smoke_viplanner",)
    ),
    Method("gnm", "GNM", ("imagenav", "explore"), ("agent=gnm",), tiny=("experiment=smoke_gnm",)),
    Method("vint", "ViNT", ("imagenav", "explore"), ("agent=vint",), tiny=("experiment=smoke_vint",)),
    Method("nomad", "NoMaD", ("imagenav", "explore"), ("agent=nomad",), tiny=("experiment=smoke_nomad",)),
    Method("ddppo", "DD-PPO", ("pointnav",), ("agent=ddppo", "trainer=ppo"), rl=True, cost=0.5),
)


@dataclass(frozen=True)
class Preset:
    """Sizes of one System-1 results run.

    Attributes:
        generate: ``envs.datasets.system1`` options.
        imitation: ``trainers/run.py`` overrides of every imitation method (before the method's own).
        ppo: the same for DD-PPO.
        evaluate: ``benchmarks/run.py`` overrides of every evaluation.
        final_episodes: episodes of each training run's own final evaluation (its completion mark).
    """

    generate: tuple[str, ...]
    imitation: tuple[str, ...]
    ppo: tuple[str, ...]
    evaluate: tuple[str, ...] = ()
    final_episodes: int = 10


PRESETS = {
    # The README's table: NavDP's data, 2 epochs of 16-window batches for every imitation method (NavDP's
    # schedule), DD-PPO 300,000 environment steps (a tiny budget next to the published 2.5 billion), every
    # method on all 100 episodes of each evaluation set.
    "cpu": Preset(
        ("--preset", "cpu", "--trajectories-per-scene", "30", "--near-obstacle-starts", "0.3"),
        ("trainer.epochs=2", "data.batch_size=16", "checkpoint.every_steps=200", "threads=1"),
        ("trainer.total_steps=300000", "trainer.vector=sync", "data.width=64", "data.height=64")
        + ("data.max_episode_steps=200", "threads=1"),
    ),
    # Seconds per stage: one scene per kind, one trajectory each, the smoke agents, one episode per set.
    "tiny": Preset(
        ("--n-train-easy", "1", "--n-train-hard", "1", "--n-train-houses", "1")
        + ("--trajectories-per-scene", "1", "--n-eval-scenes", "1", "--eval-episodes-per-scene", "2")
        + ("--workers", "1", "--no-progress"),
        ("trainer.epochs=1", "data.batch_size=4"),
        ("trainer.total_steps=64", "trainer.num_envs=2", "trainer.rollout_steps=16", "trainer.vector=sync")
        + ("data.width=64", "data.height=64", "data.max_episode_steps=20"),
        ("benchmark.n_episodes=1", "benchmark.max_episode_steps=12", "benchmark.n_videos=0"),
        final_episodes=1,
    ),
}
# The cpu preset's evaluation sets (the same scenes and episodes: scenes are seeded by set and index) with
# three times its training scenes (18 easy, 18 hard, 12 houses arenas; 1,440 trajectories) and one epoch
# (about 1.5 times the cpu preset's updates): does NavDP gain from more varied scenes?
PRESETS["cpu-large"] = replace(
    PRESETS["cpu"],
    generate=PRESETS["cpu"].generate
    + ("--n-train-easy", "18", "--n-train-hard", "18", "--n-train-houses", "12"),
    imitation=tuple(merge_overrides(PRESETS["cpu"].imitation, ("trainer.epochs=1",))),
)


@dataclass(frozen=True)
class Cell:
    """One evaluation: a method on one task, evaluation set and planning mode."""

    method: Method
    task: str
    split: str
    planning: str

    @property
    def name(self) -> str:
        """Its folder and stage name: ``<method>-<task>-<split>-<planning>``."""
        return f"{self.method.key}-{self.task}-{self.split}-{self.planning}"


@dataclass
class System1Results:
    """A System-1 results run: its folder, preset, methods and planning modes, and the stages that make it."""

    out: Path
    preset_name: str
    methods: list[Method]
    planning: list[str]
    command: str

    @property
    def preset(self) -> Preset:
        """The preset's sizes."""
        return PRESETS[self.preset_name]

    @property
    def data(self) -> Path:
        """The System-1 data."""
        return self.out / "data"

    def run_dir(self, method: Method) -> Path | None:
        """The training run folder (``run_of``'s for an acting variant; None for an untrained method)."""
        if method.run_of:
            return self.out / "runs" / method.run_of
        return self.out / "runs" / method.key if method.train else None

    def cells(self) -> list[Cell]:
        """Every evaluation, method by method."""
        return [
            Cell(m, task, split, planning)
            for m in self.methods
            for task in m.tasks
            for split in SPLITS
            for planning in self.planning
        ]

    def eval_dir(self, cell: Cell) -> Path:
        """The evaluation folder of ``cell``."""
        return self.out / "eval" / cell.name

    # ------------------------------------------------------------------------------------------ stages
    def stages(self) -> list[Stage]:
        """Every stage, in order (see the module docstring)."""
        py, data = sys.executable, self.data
        generate = [py, "-m", "envs.datasets.system1", "--out", str(data), *self.preset.generate]
        stages = [
            Stage(
                "generate", data, lambda: "digest" in (read_json(data / "info.json") or {}), lambda: generate
            )
        ]
        for method in self.methods:
            if method.train:
                stages.append(self._train_stage(method))
            stages += [self._evaluate_stage(c) for c in self.cells() if c.method == method]
        done = lambda: _tables_done(self._results, self._eval_dirs())  # noqa: E731
        stages.append(Stage("tables", self._results, done, None, self.write_tables))
        return stages

    @property
    def _results(self) -> Path:
        return self.out / "results"

    def _eval_dirs(self) -> list[Path]:
        return [self.eval_dir(c) for c in self.cells()]

    def train_overrides(self, method: Method) -> list[str]:
        """The ``trainers/run.py`` overrides of ``method`` (without ``resume``)."""
        p, task = self.preset, method.tasks[0]
        where = [f"data.dir={self.data}", f"data.task={task}", f"run_dir={self.run_dir(method)}", "seed=0"]
        if method.rl:
            common = list(p.ppo)
        else:
            store = f"data.init_store={self.data}/trajectories"
            common = [*p.imitation, "trainer=bc", "trainer.n_episodes=0", store]
        final = ["eval.split=cluttered_easy", f"eval.benchmark={TASKS[task]}", "eval.final=true"]
        final += [f"eval.final_n_episodes={p.final_episodes}", "eval.every_epochs=0"]
        tiny = method.tiny if self.preset_name == "tiny" else ()
        return [*merge_overrides(tuple(common), method.train, tuple(final), tiny), *where]

    def _train_stage(self, method: Method) -> Stage:
        folder = self.run_dir(method)
        assert folder is not None

        def command() -> list[str]:
            resume = "true" if latest_run_checkpoint(folder) is not None else "false"
            return [sys.executable, "trainers/run.py", *self.train_overrides(method), f"resume={resume}"]

        done = functools.partial(training_done, folder)
        stale = lambda: config_changes(folder, self.train_overrides(method))  # noqa: E731
        name = f"train {method.key}"
        return Stage(name, folder, done, command, run=method.key, stale=stale, cost=method.cost)

    def _evaluate_stage(self, cell: Cell) -> Stage:
        folder, trained = self.eval_dir(cell), self.run_dir(cell.method)
        agent = [f"checkpoint={trained}/checkpoints/last"] if trained else [f"agent={cell.method.agent}"]
        command = [sys.executable, "benchmarks/run.py", *agent, f"benchmark={TASKS[cell.task]}"]
        command += [f"benchmark.split={cell.split}", f"benchmark.planning={cell.planning}"]
        command += [f"data.dir={self.data}", f"out_dir={folder}", "report=false", *self.preset.evaluate]
        command += cell.method.evaluate
        done = lambda: evaluated(folder, trained, cell.method.evaluate)  # noqa: E731
        name = f"evaluate {cell.method.key} {cell.task} {cell.split} {cell.planning}"
        run = cell.method.run_of or cell.method.key
        return Stage(name, folder, done, lambda: command, run=run, cost=cell.method.cost)

    # ------------------------------------------------------------------------------------------ tables
    def write_tables(self) -> None:
        """``system1.md`` and ``system1.json`` from the evaluation folders alone (``system1.json`` last: it
        marks the tables complete)."""
        identity, versions = dataset_identity(self.data), code_versions(self.out)
        cells = {c.name: load_row(c.method.label, [self.eval_dir(c)]).summaries[0] for c in self.cells()}
        lines = [
            "# System-1 benchmark (NavDP protocol) on the generated System-1 data",
            "",
            f"- command: `{self.command}` (rerun it to continue an interrupted run and remake this page)",
            f"- dataset: `{self.data}`, digest `{identity['digest']}` (generator format version "
            f"{identity['format_version']})",
            "- code: " + (", ".join(f"`{c}` ({names})" for c, names in versions.items()) or "not recorded"),
            f"- preset `{self.preset_name}`; every method seed 0; the baselines are variants trained here on "
            "this data, not their published weights",
            "",
        ]
        for task in TASKS:
            for planning in self.planning:
                rows = [m for m in self.methods if task in m.tasks]
                if rows:
                    lines += [f"## {task}, {planning} planning", ""]
                    lines += [*self._table(rows, task, planning, cells), ""]
        atomic_write(self._results / "system1.md", "\n".join(lines).encode())
        doc = {"command": self.command, "preset": self.preset_name, "dataset": identity, "code": versions}
        doc.update(cells=cells, inputs=evaluation_inputs(self._eval_dirs()))
        atomic_write(self._results / "system1.json", (json.dumps(doc, indent=2) + "\n").encode())

    def _table(self, methods: list[Method], task: str, planning: str, cells: dict[str, dict]) -> list[str]:
        main = "explored area (m²)" if task == "explore" else "SR / SPL"
        head = ["method", *(f"{s} {main}" for s in SPLITS), "stuck", "plan latency (ms)", "episodes"]
        lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
        for m in methods:
            found = [cells[Cell(m, task, s, planning).name] for s in SPLITS]
            metrics = [f.get("metrics", {}) for f in found]
            if task == "explore":
                main_cells = [format_stat(x.get("explored_area", float("nan")), None, 1) for x in metrics]
            else:
                main_cells = [
                    f"{format_stat(x.get('success', float('nan')), None, 2)} / "
                    f"{format_stat(x.get('spl', float('nan')), None, 2)}"
                    for x in metrics
                ]
            counts = [int(f.get("count", 0)) for f in found]
            stuck = sum(x.get("stuck", 0.0) * n for x, n in zip(metrics, counts, strict=True))
            stuck /= max(sum(counts), 1)
            latency = [x["plan_latency"] for x in metrics if "plan_latency" in x]
            ms = format_stat(1e3 * sum(latency) / len(latency), None, 0) if latency else "–"
            cells_of_row = [m.label, *main_cells, f"{stuck:.0%}", ms, "/".join(map(str, counts))]
            lines.append("| " + " | ".join(cells_of_row) + " |")
        return lines


def _tables_done(results: Path, evals: list[Path]) -> bool:
    found = read_json(results / "system1.json")
    return found is not None and found.get("inputs") == evaluation_inputs(evals)


def _parser() -> argparse.ArgumentParser:
    keys = [m.key for m in METHODS]
    p = argparse.ArgumentParser(prog="python scripts/results_system1.py", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, help="results folder (default runs/system1/<preset>)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="sizes (default: cpu)")
    p.add_argument("--only", help=f"comma-separated methods (default all: {','.join(keys)})")
    p.add_argument("--planning", default="sync", help="sync, async or sync,async (default sync)")
    p.add_argument("--jobs", type=int, default=1, help="methods side by side (default 1)")
    p.add_argument("--dry-run", action="store_true", help="print the stages and commands; run nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    keys = pick_keys(parser, args.only, [m.key for m in METHODS], "methods")
    methods = [m for m in METHODS if m.key in keys]
    planning = [p.strip() for p in args.planning.split(",") if p.strip()]
    if not planning or any(p not in ("sync", "async") for p in planning):
        parser.error(f"--planning: expected sync, async or sync,async, got {args.planning!r}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s results: %(message)s", datefmt="%H:%M:%S")
    out = (args.out or Path("runs/system1") / args.preset).resolve()
    command = shlex.join(["python", "scripts/results_system1.py", *argv])
    results = System1Results(out, args.preset, methods, planning, command)
    claim_folder(parser, out, args.preset, args.dry_run)
    stages = results.stages()
    if args.dry_run:
        print("\n".join(plan_lines(stages)))
        return 0
    execute(stages, out, args.jobs)
    logger.info("table: %s", out / "results" / "system1.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
