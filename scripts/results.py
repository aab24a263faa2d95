"""Re-make the README's results tables on today's code, over seeds, with one resumable command.

    python scripts/results.py [--out DIR] [--preset default|small|tiny] [--seeds N] [--only cma,random,...]
                              [--jobs N] [--dry-run]
    make results RESULTS_ARGS="--preset small"

Stages, in order; each is a subprocess of an existing entry point and is skipped when its output is complete,
so an interrupted run continues where it stopped (``--dry-run`` lists them with their commands):

1. ``generate``: the benchmark (``python -m envs.datasets.generate``) -> ``OUT/data/benchmark``; done when
   its ``info.json`` records the dataset digest.
2. ``collect``: the expert's episodes, once for every run (``python -m trainers.data.collect --store-frames``)
   -> ``OUT/data/expert``; done when the store holds them all.
3. ``evaluate <baseline>``: each untrained agent of :data:`ENTRIES` (``python benchmarks/run.py agent=NAME``)
   -> ``OUT/eval/<key>``; done when its ``summary.json`` exists.
4. ``train <key>-s<seed>``: each trained entry, for seeds ``0..N-1`` when it is a multi-seed entry and seed 0
   otherwise (``python trainers/run.py``) -> ``OUT/runs/<key>-s<seed>``; done when the run has its final
   evaluation (``eval/final/summary.json``); a run with a checkpoint is continued with ``resume=true``.
   ``evaluate <key>-s<seed>`` follows it (``benchmarks/run.py checkpoint=<run>/checkpoints/last``) ->
   ``OUT/eval/<key>-s<seed>``; done when its ``summary.json`` is that of the run's latest checkpoint.
   A run folder whose ``config.yaml`` differs from the config the command resolves to today (another
   experiment file, a changed default) is refused, naming the keys, before anything runs: its numbers would
   not be today's code.
5. ``tables``: ``OUT/results/results.md`` (per benchmark one table, mean ± std over seeds where there are
   several, single runs as is; the dataset digest, the code version, the command), ``results.json``, and
   ``python -m benchmarks.report``'s ``report.md`` and plots beside them, all made from the run and
   evaluation folders alone; done when ``results.json`` lists the same evaluations.

With ``--jobs N`` the runs of step 4 proceed side by side, N at a time, the longest first (each entry's
``cost``), each into ``OUT/logs/<stage>.log``. ``OUT/stages.json`` records for every stage when it finished,
how long it took (summed over its attempts when it was interrupted and continued), and the git commit it ran
on (:mod:`benchmarks.stages` runs and records the stages).
``OUT/plan.json`` holds the preset: a folder made with one preset is not continued with another.

**Adding an agent** (RDP, NavDP, a System-2 or dual system): one :class:`Entry` in :data:`ENTRIES`: its
``trainers/run.py`` overrides (``agent=rdp``, and ``experiment=...`` to replace the preset's), whether it is
run over seeds, and its benchmark (``system1_pointnav`` rows get the System-1 columns).

**Time** (``--preset default``, one process at a time, on the 2-core CPU machine, estimated from the README's
measurements): generation about 2 min (216 CPU-seconds, 2 workers), expert collection about 3 min (1,000
episodes), six training runs of the ``navgym_dagger`` schedule at about 48 min each, their own final
evaluation included (CMA × 3 seeds, Seq2Seq, the two ablations: 4 h 48 min; Seq2Seq and the ablations are
not faster: their agents wander longer in the DAgger rounds), eight evaluations of the 200 val_unseen
episodes about 20 min in all (~245,000 steps at ~200-250 steps/s: the vision-blanked agent walks ~381 steps
an episode), tables under a minute: **about 5 h 15 min**. ``--preset small`` (12 houses, 2 seeds, 3 short
rounds, 12 evaluation episodes) takes about 20 min, most of it evaluating barely trained agents to the
500-step limit; ``--preset tiny`` (4 houses, the ``smoke`` agents) about a minute. ``OUT/stages.json``
has the measured time of every stage.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import shlex
import sys
from dataclasses import dataclass
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
from benchmarks.tables import evaluation_inputs, load_row, results_page, row_record  # noqa: E402
from envs.datasets.digest import dataset_identity  # noqa: E402
from envs.fileio import atomic_write  # noqa: E402
from trainers.run_folder import config_changes  # noqa: E402

logger = logging.getLogger("results")


@dataclass(frozen=True)
class Entry:
    """One row of the results tables.

    Attributes:
        key: its folder names (``OUT/runs/<key>-s<seed>``, ``OUT/eval/<key>...``) and ``--only`` name.
        label: its name in the table.
        train: ``trainers/run.py`` overrides of a trained agent, applied after the preset's (a key given here
            replaces the preset's; ``{data}`` stands for the benchmark folder); empty for an agent evaluated
            as it is.
        agent: the registry name of an untrained agent (``forward``, ``random``).
        own_schedule: ``train`` names an experiment with a trainer and schedule of its own (System 2's
            supervised fine-tuning): the preset's ``trainer`` overrides (DAgger's rounds) are left out.
        after: the key of an entry whose seed-0 run this one builds on (the dual systems on System 2's
            checkpoint, ``{runs}`` in ``train`` standing for ``OUT/runs``): its stages follow that run's in
            one chain, so side by side (``--jobs``) they still start after it; ``--only`` needs both keys
            unless that run is already trained (then they are chains of their own, side by side).
        multi_seed: train once per seed (``--seeds``) and show mean ± std; else one run, seed 0.
        benchmark: the benchmark it is evaluated on.
        preset_train: per preset, overrides applied after ``train`` (e.g. the tiny preset's smoke-sized
            agent for an agent whose fields ``experiment=smoke`` does not know).
        evaluate: ``benchmarks/run.py`` overrides of its evaluation (acting settings of the checkpoint, e.g.
            ``agent=cma agent.progress_stop=0.8``); its ``agent.<field>`` values must be in the summary's
            ``agent_config`` for the evaluation to count as done.
        cost: its training time relative to CMA's (with ``--jobs`` the longest runs start first).
    """

    key: str
    label: str
    train: tuple[str, ...] = ()
    agent: str | None = None
    own_schedule: bool = False
    after: str | None = None
    multi_seed: bool = False
    benchmark: str = "vln_val_unseen"
    preset_train: tuple[tuple[str, tuple[str, ...]], ...] = ()
    evaluate: tuple[str, ...] = ()
    cost: float = 1.0


#: Acting setting of the recurrent VLN agents' evaluations: STOP where the progress head predicts at least
#: this (chosen on val_seen with CMA seed 0: SR 0.490 without, 0.480 / 0.515 / 0.500 at 0.7 / 0.8 / 0.9).
PROGRESS_STOP = "agent.progress_stop=0.8"

#: Acting setting of the dual systems' evaluations: the anchor's asynchronous mode (System 2 in its
#: background thread, re-asked every 8 System-1 steps); ``sync`` asks it at every step (README, "Dual
#: systems", has both).
DUAL_ACTING = "agent.infer_mode=partial_async"

#: The rows of the README's "Results on the default generated benchmark", in its order.
ENTRIES = (
    Entry("cma", "CMA + DAgger", ("agent=cma",), multi_seed=True, evaluate=("agent=cma", PROGRESS_STOP)),
    Entry("seq2seq", "Seq2Seq + DAgger", ("agent=seq2seq",), evaluate=("agent=seq2seq", PROGRESS_STOP)),
    Entry(
        "cma-blank-instruction",
        "CMA, instructions blanked",
        ("agent=cma", "ablation.blank=[instruction]"),
        evaluate=("agent=cma", PROGRESS_STOP),
    ),
    Entry(
        "cma-blank-vision",
        "CMA, vision blanked",
        ("agent=cma", "ablation.blank=[vision]"),
        evaluate=("agent=cma", PROGRESS_STOP),
    ),
    Entry(
        "rdp",
        "RDP + DAgger",
        ("agent=rdp",),
        preset_train=(("tiny", ("experiment=smoke_rdp",)),),
        cost=2.0,  # trains at 0.45-0.65x CMA's samples/s (README, RDP section)
    ),
    Entry(
        "system2",
        "System 2 + shortest-path follower",
        ("experiment=system2_vln", "agent=system2", "agent.corpus_split={data}/train"),
        own_schedule=True,
        preset_train=(
            ("small", ("trainer.epochs=1",)),
            ("tiny", ("data.width=32", "data.height=32", "trainer.epochs=1", "eval.final_n_episodes=2")),
        ),
        cost=2.5,  # three epochs of 17,911 queries at about 8 queries/s on one core
    ),
    *(
        Entry(
            f"dual-{head}",
            f"{label} (dual, on System 2)",
            ("experiment=dual_vln", "agent=dual", f"agent.system1={head}_async")
            + ("agent.system2={runs}/system2-s0/checkpoints/last/agent",),
            own_schedule=True,
            after="system2",
            preset_train=(("tiny", ("data.width=32", "data.height=32", "eval.final_n_episodes=2")),),
            evaluate=("agent=dual", DUAL_ACTING),
            cost=3.0,  # one epoch of 81,759 System-1 samples at 8-9 samples/s (about 2.7 h)
        )
        for head, label in (("navdp", "InternVLA-N1 w/ NavDP"), ("nextdit", "DualVLN (NextDiT)"))
    ),
    Entry("forward", "forward (37 × FORWARD, then STOP)", agent="forward"),
    Entry("random", "random", agent="random"),
)


@dataclass(frozen=True)
class Preset:
    """Sizes of one results run.

    Attributes:
        generate: ``envs.datasets.generate`` options of the benchmark.
        expert_episodes: expert episodes collected once (DAgger's round 0 of every run).
        frame_size: camera side of the stored expert frames (the training camera of ``train``).
        train: ``trainers/run.py`` overrides shared by every trained entry.
        evaluate: ``benchmarks/run.py`` overrides of every evaluation.
        seeds: default ``--seeds``.
    """

    generate: tuple[str, ...]
    expert_episodes: int
    frame_size: int
    train: tuple[str, ...]
    evaluate: tuple[str, ...] = ()
    seeds: int = 3


PRESETS = {
    # The README's tables: 2,000 training episodes, 1,000 expert + nine DAgger rounds, all 200 val_unseen.
    "default": Preset(("--preset", "default"), 1000, 64, ("experiment=navgym_dagger",)),
    # The whole pipeline on CPU in minutes: 48 training episodes, three short rounds, 12 val_unseen.
    "small": Preset(
        ("--preset", "small"),
        48,
        64,
        ("experiment=navgym_dagger", "trainer.rounds=3", "trainer.first_round_episodes=48")
        + ("trainer.episodes_per_round=16", "eval.n_episodes=4"),
        ("benchmark.n_videos=1",),
        seeds=2,
    ),
    # Seconds per stage: 4 houses, the smoke agents, 2 rounds of a couple of episodes, 2 evaluation episodes.
    "tiny": Preset(
        ("--n-scenes", "4", "--episodes-per-scene", "2", "--unseen-fraction", "0.5")
        + ("--val-seen-per-scene", "1", "--workers", "1", "--no-progress"),
        4,
        32,
        ("experiment=smoke", "trainer=dagger", "trainer.rounds=2", "trainer.first_round_episodes=4")
        + ("trainer.episodes_per_round=2", "trainer.epochs=1", "data.store_frames=true"),
        ("benchmark.n_episodes=2", "benchmark.max_episode_steps=30", "benchmark.n_videos=0"),
        seeds=2,
    ),
}


@dataclass(frozen=True)
class Run:
    """One evaluated row member: an entry's training run (``seed`` set) or an untrained agent (None)."""

    entry: Entry
    seed: int | None
    name: str


def run_name(key: str, seed: int) -> str:
    """The name (and folder under ``OUT/runs``) of an entry's training run with ``seed``."""
    return f"{key}-s{seed}"


@dataclass
class Results:
    """A results run: its folder, preset, entries and seeds, and the stages that make it."""

    out: Path
    preset_name: str
    entries: list[Entry]
    seeds: int
    command: str

    @property
    def preset(self) -> Preset:
        """The preset's sizes."""
        return PRESETS[self.preset_name]

    @property
    def data(self) -> Path:
        """The generated benchmark."""
        return self.out / "data" / "benchmark"

    @property
    def expert(self) -> Path:
        """The expert's trajectory store, every run's round 0."""
        return self.out / "data" / "expert"

    def runs(self) -> list[Run]:
        """Untrained agents first, then every training run (per seed for multi-seed entries)."""
        fixed = [Run(e, None, e.key) for e in self.entries if not e.train]
        trained = [
            Run(e, seed, run_name(e.key, seed))
            for e in self.entries
            if e.train
            for seed in range(self.seeds if e.multi_seed else 1)
        ]
        return fixed + trained

    def run_dir(self, run: Run) -> Path | None:
        """The training run folder (None for an untrained agent)."""
        return None if run.seed is None else self.out / "runs" / run.name

    def eval_dir(self, run: Run) -> Path:
        """The evaluation folder (``summary.json``, ``episodes.jsonl``)."""
        return self.out / "eval" / run.name

    # ------------------------------------------------------------------------------------------ stages
    def stages(self) -> list[Stage]:
        """Every stage, in order (see the module docstring)."""
        py, p, data, expert = sys.executable, self.preset, self.data, self.expert
        generate = [py, "-m", "envs.datasets.generate", "--out", str(data), *p.generate]
        stages = [
            Stage(
                "generate", data, lambda: "digest" in (read_json(data / "info.json") or {}), lambda: generate
            )
        ]
        collect = [py, "-m", "trainers.data.collect", "--data", str(data), "--split", "train"]
        collect += ["--out", str(expert), "--n-episodes", str(p.expert_episodes), "--store-frames"]
        collect += ["--size", str(p.frame_size)]
        if any(e.train for e in self.entries):
            done = functools.partial(_collected, expert, p.expert_episodes)
            stages.append(Stage("collect", expert, done, lambda: collect))
        for run in self.runs():
            if run.seed is not None:
                stages.append(self._train_stage(run))
            stages.append(self._evaluate_stage(run))
        report = [py, "-m", "benchmarks.report", *map(str, self._eval_dirs()), "--out", str(self._results)]
        report += ["--runs", *(str(self.run_dir(r)) for r in self.runs() if r.seed is not None)]
        done = functools.partial(_tables_done, self._results, self._eval_dirs())
        stages.append(Stage("tables", self._results, done, lambda: report, self.write_tables))
        return stages

    @property
    def _results(self) -> Path:
        return self.out / "results"

    def _eval_dirs(self) -> list[Path]:
        return [self.eval_dir(r) for r in self.runs()]

    def _train_stage(self, run: Run) -> Stage:
        folder = self.run_dir(run)

        def overrides() -> list[str]:
            entry = run.entry
            extra = dict(entry.preset_train).get(self.preset_name, ())
            preset = [o for o in self.preset.train if not (entry.own_schedule and _is_trainer_key(o))]
            train = [
                o.replace("{data}", str(self.data)).replace("{runs}", str(self.out / "runs"))
                for o in entry.train
            ]
            where = [f"data.dir={self.data}", f"data.init_store={self.expert}", f"run_dir={folder}"]
            return [*merge_overrides(tuple(preset), tuple(train), extra), *where, f"seed={run.seed}"]

        def command() -> list[str]:
            resume = "true" if latest_run_checkpoint(folder) is not None else "false"
            return [sys.executable, "trainers/run.py", *overrides(), f"resume={resume}"]

        def stale() -> str | None:
            return self._missing_dependency(run) or config_changes(folder, overrides())

        done = functools.partial(training_done, folder)
        return Stage(
            f"train {run.name}", folder, done, command, run=self._chain(run), stale=stale, cost=run.entry.cost
        )

    def _evaluate_stage(self, run: Run) -> Stage:
        folder, trained = self.eval_dir(run), self.run_dir(run)
        agent = [f"checkpoint={trained}/checkpoints/last"] if trained else [f"agent={run.entry.agent}"]
        command = [sys.executable, "benchmarks/run.py", *agent, f"benchmark={run.entry.benchmark}"]
        command += [f"data.dir={self.data}", f"out_dir={folder}", "report=false", *self.preset.evaluate]
        command += run.entry.evaluate if trained else []
        done = functools.partial(evaluated, folder, trained, run.entry.evaluate if trained else ())
        return Stage(f"evaluate {run.name}", folder, done, lambda: command, run=self._chain(run))

    def _chain(self, run: Run) -> str:
        """The stage chain of a run: that of the run it builds on (``Entry.after``) when that run is made
        here too, else its own (the base is then already trained, :meth:`_missing_dependency`)."""
        after = run.entry.after
        return run_name(after, 0) if after and self._makes(after) else run.name

    def _makes(self, key: str) -> bool:
        """Whether the entry ``key`` is among the rows this command makes."""
        return any(e.key == key for e in self.entries)

    def _missing_dependency(self, run: Run) -> str | None:
        """Why a run cannot start: it builds on a run that is neither trained nor among the entries made."""
        after = run.entry.after
        if after is None or self._makes(after):
            return None
        base = self.out / "runs" / run_name(after, 0)
        if training_done(base):
            return None
        return f"{run.name} builds on the trained run {base}: add {after} to --only"

    # ------------------------------------------------------------------------------------------ tables
    def write_tables(self) -> None:
        """``results.md`` and ``results.json`` from the evaluation folders alone (``results.json`` last: it
        marks the tables complete)."""
        rows, records, runs = [], [], self.runs()
        for entry in self.entries:
            members = [r for r in runs if r.entry == entry]
            row = load_row(entry.label, [self.eval_dir(r) for r in members], [r.seed for r in members])
            rows.append(row)
            records.append({"key": entry.key, **row_record(row), "eval": [r.name for r in members]})
        identity, versions, p = dataset_identity(self.data), code_versions(self.out), self.preset
        facts = [
            f"command: `{self.command}` (rerun it to continue an interrupted run and remake this page)",
            f"dataset: `{self.data}`, digest `{identity['digest']}` (generator format version "
            f"{identity['format_version']})",
            "code: " + (", ".join(f"`{c}` ({names})" for c, names in versions.items()) or "not recorded"),
            f"training: `{' '.join(p.train)}` plus each row's overrides; round 0 = {p.expert_episodes} "
            f"expert episodes; rows of several runs: seeds 0..{self.seeds - 1}, mean ± sample std; others: "
            "seed 0",
            "plots and per-agent details: [report.md](report.md)",
        ]
        title = f"Results on the generated benchmark (preset `{self.preset_name}`)"
        page = results_page(title, facts, rows, identity["digest"])
        atomic_write(self._results / "results.md", page.encode())
        doc = {"command": self.command, "preset": self.preset_name, "seeds": self.seeds, "dataset": identity}
        doc.update(code=versions, rows=records, inputs=evaluation_inputs(self._eval_dirs()))
        atomic_write(self._results / "results.json", (json.dumps(doc, indent=2) + "\n").encode())


def _is_trainer_key(override: str) -> bool:
    """Whether a Hydra override sets the trainer group or one of its fields (``trainer=dagger``,
    ``trainer.rounds=3``)."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key == "trainer" or key.startswith("trainer.")


def _collected(store: Path, n: int) -> bool:
    from envs.datasets.store import TrajectoryStore

    return (store / "store.json").is_file() and len(
        TrajectoryStore(store, readonly=True).filter(round=0)
    ) >= n


def _tables_done(results: Path, evals: list[Path]) -> bool:
    found = read_json(results / "results.json")
    return found is not None and found.get("inputs") == evaluation_inputs(evals)


def _parser() -> argparse.ArgumentParser:
    keys = [e.key for e in ENTRIES]
    p = argparse.ArgumentParser(prog="python scripts/results.py", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, help="results folder (default runs/results/<preset>)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="sizes (default: default)")
    p.add_argument("--seeds", type=int, help="seeds of multi-seed rows (default: 3; 2 with small and tiny)")
    p.add_argument("--only", help=f"comma-separated rows (default all: {','.join(keys)})")
    p.add_argument("--jobs", type=int, default=1, help="training runs side by side (default 1)")
    p.add_argument("--dry-run", action="store_true", help="print the stages and commands; run nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    keys = pick_keys(parser, args.only, [e.key for e in ENTRIES], "rows")
    entries = [e for e in ENTRIES if e.key in keys]
    seeds = PRESETS[args.preset].seeds if args.seeds is None else args.seeds
    if seeds < 1:
        parser.error(f"--seeds must be >= 1, got {seeds}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s results: %(message)s", datefmt="%H:%M:%S")
    out = (args.out or Path("runs/results") / args.preset).resolve()
    command = shlex.join(["python", "scripts/results.py", *argv])
    results = Results(out, args.preset, entries, seeds, command)
    claim_folder(parser, out, args.preset, args.dry_run)
    stages = results.stages()
    if args.dry_run:
        print("\n".join(plan_lines(stages)))
        return 0
    execute(stages, out, args.jobs)
    logger.info("tables: %s", out / "results" / "results.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
