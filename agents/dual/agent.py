"""The dual-system agent (InternVLA-N1 dual system w/ NavDP*, DualVLN; anchors Part A §2.6).

**Training.** System 2 (a saved :class:`agents.system2.System2Agent`, frozen unless ``freeze_system2`` is
False) reads each pixel-goal sample's conversation (its pixel answer included); ``n_query`` learned queries
appended after it give the latent goal (:class:`agents.dual.latents.LatentQueries`); the System-1 head
predicts the 32-step future path from the sample's System-1 frame (:mod:`agents.dual.targets`) given the
latents and [pixel-goal frame, current frame]. The only loss is the System-1 loss.

**Acting** (waypoint actions, :mod:`agents.dual.acting`): System 2 runs in a background thread; System 1
plans K trajectories, averages them and hands the first ``n_waypoints`` to the waypoint controller.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents.base import AGENTS, Agent, VocabLike, to_numpy
from agents.contract import CameraRequest, SampleSpec
from agents.dual import acting
from agents.dual.config import DualConfig
from agents.dual.latents import LatentQueries
from agents.dual.navdp_head import NavDPAsyncHead
from agents.dual.nextdit_head import NextDiTHead
from agents.dual.targets import path_targets, steps_to_waypoints
from agents.system2.acting import LOOKDOWN, history_frames
from agents.system2.agent import System2Agent
from agents.system2.config import System2Config
from agents.system2.conversation import encode

HEADS = {"navdp_async": NavDPAsyncHead, "nextdit_async": NextDiTHead}
#: The saved System 2 inside a dual agent's folder.
SYSTEM2_DIR = "system2"
SYSTEM2_CONFIG = "system2_config.json"
#: Pixel-goal queries become this many System-1 samples (every 2nd frame up to the goal; InternVLA-N1: 12).
SYSTEM1_POINTS = 12


def load_system2(path: str | None) -> System2Agent:
    """The System-2 agent saved in ``path``.

    Raises:
        ValueError: no path, or the folder holds another agent. FileNotFoundError: no such agent folder.
    """
    if not path:
        raise ValueError(
            "DualConfig.system2 must be the folder of a saved System-2 agent (a system2 run's "
            "checkpoints/last/agent), got None"
        )
    meta_path = Path(path) / "config.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"DualConfig.system2={path!r}: {meta_path} is missing (not an agent folder)")
    name = json.loads(meta_path.read_text()).get("name")
    if name != "system2":
        raise ValueError(f"DualConfig.system2={path!r} holds agent {name!r}; expected a 'system2' agent")
    return System2Agent.load(path)


def _rows(value: Any) -> list[Tensor]:
    return list(value) if isinstance(value, torch.Tensor) else [torch.as_tensor(v) for v in value]


class DualItemTransform:
    """Pixel-goal item -> System 2's conversation tensors (:class:`agents.system2.agent.System2ItemTransform`)
    plus ``targets`` (32, 3) float32 from ``system1_path``; runs in the loader's workers."""

    def __init__(self, system2_transform: Any) -> None:
        self.system2_transform = system2_transform

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        if item["kind"] != "pixel" or "system1_path" not in item:
            raise ValueError(
                f"dual: item of episode {item.get('episode_id')!r} step {item.get('step')} is a "
                f"{item['kind']!r} sample without System-1 values; the dual systems train on pixel-goal "
                "samples with SampleSpec.system1_points > 0"
            )
        out = self.system2_transform(item)
        out["targets"] = path_targets(to_numpy(item["system1_path"]))
        return out


@AGENTS.register("dual")
class DualAgent(Agent):
    """System 2 + a System-1 head; see the module docstring.

    Observations: ``rgb`` (B,H,W,3), ``depth`` (B,H,W,1), ``lookdown_rgb`` / ``lookdown_depth``,
    ``instruction_text`` and ``odometry`` (B,3) (partial_async follows a plan between re-plans with it).
    Training batches: pixel-goal samples with System-1 values (:class:`DualItemTransform`).

    Args:
        config: a :class:`DualConfig`.
        vocab, instructions: unused (System 2 has its tokenizer); accepted as every agent's.
        directory: a saved dual agent to rebuild (its System 2 is read from there, not ``config.system2``).
        load_pretrained: read ``rgb_weights``.
    """

    name = "dual"
    config_class = DualConfig
    action_mode = "waypoint"
    n_waypoints = DualConfig.n_waypoints
    tasks = ("vln",)
    cameras = (CameraRequest(), CameraRequest(uuid=LOOKDOWN, pitch=-30.0, modalities=("rgb", "depth")))
    sample = SampleSpec(kind="pixel_goal", system1_points=SYSTEM1_POINTS)

    def __init__(
        self,
        config: DualConfig,
        vocab: VocabLike | None = None,
        instructions: Iterable[str] | None = None,
        directory: str | Path | None = None,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(config)
        if directory is not None:
            folder = Path(directory) / SYSTEM2_DIR
            data = json.loads((folder / SYSTEM2_CONFIG).read_text())
            self.system2 = System2Agent(System2Config(**data), directory=folder)
        else:
            self.system2 = load_system2(config.system2)
        self.n_waypoints = config.n_waypoints
        self.hidden = int(self.system2.model.config.text_config.hidden_size)
        self.latent = LatentQueries(self.hidden, config.n_query)
        self.system1 = HEADS[config.system1](config, self.hidden, load_pretrained)
        self.system2.requires_grad_(not config.freeze_system2)
        self.runtime: acting.DualRuntime | None = None
        self._init_state(0)

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None, directory: Path | None = None) -> Agent:
        return cls(config, directory=directory, load_pretrained=False)

    def save_extra(self, directory: Path) -> list[str]:
        """``system2/``: System 2's config and its model config, tokenizer and processor."""
        folder = Path(directory) / SYSTEM2_DIR
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SYSTEM2_CONFIG).write_text(json.dumps(dataclasses.asdict(self.system2.config), indent=2))
        names = self.system2.save_extra(folder)
        return [f"{SYSTEM2_DIR}/{SYSTEM2_CONFIG}", *(f"{SYSTEM2_DIR}/{n}" for n in names)]

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Load weights saved by ``state_dict`` (System 2's tied output embedding comes from its input one).

        Raises:
            ValueError: the latent queries' width differs from the loaded System 2's hidden size.
        """
        state = dict(state_dict)
        queries = state.get("latent.queries")
        if queries is not None and queries.shape[-1] != self.hidden:
            raise ValueError(
                f"dual: latent queries of width {queries.shape[-1]} do not fit System 2's hidden size "
                f"{self.hidden} (expected latent.queries of shape ({self.config.n_query}, {self.hidden}))"
            )
        for key in self.system2._tied_keys():
            state.setdefault(
                f"system2.{key}", state["system2.model.model.language_model.embed_tokens.weight"]
            )
        return super().load_state_dict(state, strict=strict, assign=assign)

    def train(self, mode: bool = True) -> DualAgent:
        """Train/eval mode; a frozen System 2 stays in eval mode."""
        super().train(mode)
        if self.config.freeze_system2:
            self.system2.eval()
        return self

    def param_groups(self) -> list[dict[str, Any]]:
        """One group of the trainable parameters (a frozen System 2 is left out)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def item_transform(self) -> DualItemTransform:
        """System 2's conversation tensors and the System-1 targets of an item (runs in loader workers)."""
        return DualItemTransform(self.system2.item_transform())

    # ------------------------------------------------------------------------------------------------ loss
    def latents(self, input_ids: list[Tensor], pixel_values: Tensor, image_grid_thw: Tensor) -> Tensor:
        """(B, n_query, hidden) latent goal of B conversations (ids (L_i,), patches, grids)."""
        pad = int(self.system2.tokenizer.pad_token_id)
        return self.latent(self.system2.model, input_ids, pixel_values, image_grid_thw, pad)

    def loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """The System-1 loss of a batch of pixel-goal items (encoded by :meth:`item_transform`, or raw);
        ``batch`` is not modified. Info: ``loss/action``."""
        if "input_ids" not in batch:
            transform, n = self.item_transform(), len(batch["kind"])
            items = [transform({k: batch[k][i] for k in batch}) for i in range(n)]
            batch = {**batch, **{k: [it[k] for it in items] for k in ("input_ids", "pixel_values")}}
            batch["image_grid_thw"] = [it["image_grid_thw"] for it in items]
            batch["targets"] = torch.stack([torch.as_tensor(it["targets"]) for it in items])
        latents = self.latents(
            _rows(batch["input_ids"]),
            torch.cat(_rows(batch["pixel_values"])),
            torch.cat(_rows(batch["image_grid_thw"])),
        )
        rgb = torch.stack(
            [torch.as_tensor(batch["system1_goal_rgb"]), torch.as_tensor(batch["system1_rgb"])], 1
        )
        depth = torch.stack(
            [torch.as_tensor(batch["system1_goal_depth"]), torch.as_tensor(batch["system1_depth"])], 1
        )
        cond = self.system1.encode(latents, rgb, depth)
        return self.system1.loss(cond, torch.as_tensor(batch["targets"]).float())

    # ---------------------------------------------------------------------------------------------- acting
    def _init_state(self, n_envs: int) -> None:
        if self.runtime is not None:
            self.runtime.close()
        self.runtime = acting.DualRuntime(self, n_envs) if n_envs else None

    def _clear_state(self, env_ids: np.ndarray) -> None:
        self.runtime.clear(env_ids)

    def episode_stats(self) -> dict[str, float]:
        """``s2_calls``, ``s1_plans`` and the seconds they took (``s2_seconds``, ``s1_seconds``) since the
        last full reset (:attr:`acting.DualRuntime.stats`)."""
        if self.runtime is None:
            return {}
        stats = self.runtime.stats
        return {
            "s2_calls": stats["s2_calls"],
            "s1_plans": stats["s1_plans"],
            "s2_seconds": float(sum(stats["s2_latency"])),
            "s1_seconds": float(sum(stats["s1_latency"])),
        }

    @torch.no_grad()
    def query_system2(
        self, instruction: str, frames: list[np.ndarray], depth: np.ndarray, lookdown_rgb: np.ndarray
    ) -> acting.System2Result:
        """Ask System 2 about the last of ``frames`` (runs in the background thread); a pixel answer also
        gives the (n_query, hidden) latent of the conversation with that answer."""
        start, s2 = time.perf_counter(), self.system2
        answer = s2.ask(instruction, acting.new_memory(frames), lookdown_rgb)
        current = frames[-1]
        if answer.kind == "stop":
            result = acting.System2Result("stop")
        elif answer.kind == "turn":
            result = acting.System2Result("turn", turns=sum(1 if a == "←" else -1 for a in answer.turns[:4]))
        elif answer.kind != "pixel":
            result = acting.System2Result("unknown")
        else:
            history = history_frames(frames, s2.config.n_history)
            text = f"{answer.pixel[0]} {answer.pixel[1]}"
            q = encode(
                s2.processor, instruction, history, current, lookdown_rgb, text, "pixel", s2.config.image_size
            )
            latent = self.latents([q["input_ids"]], q["pixel_values"], q["image_grid_thw"])[0]
            result = acting.System2Result("pixel", latent, current, np.asarray(depth), text=text)
        result.latency = time.perf_counter() - start
        return result

    @torch.no_grad()
    def plan_system1(
        self,
        result: acting.System2Result,
        rgb: np.ndarray,
        depth: np.ndarray,
        generator: torch.Generator | None,
    ) -> np.ndarray:
        """(32, 3) waypoints in the current agent frame: the mean of ``num_samples`` sampled paths, the
        noise from ``generator`` (None: torch's global generator)."""
        c = self.config
        frames = torch.as_tensor(np.stack([result.goal_rgb, np.asarray(rgb)]))[None]  # (1, 2, H, W, 3)
        depths = torch.as_tensor(np.stack([result.goal_depth, np.asarray(depth)]))[None]
        cond = self.system1.encode(result.latent[None].to(self.device), frames, depths)
        steps = self.system1.sample(cond, c.num_samples, generator)  # (1, K, 32, 3)
        return steps_to_waypoints(steps).mean(dim=1)[0].cpu().numpy()

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B, n_waypoints, 3) float32 waypoints (all-NaN rows: STOP); see :mod:`agents.dual.acting`."""
        n = self._check_batch(obs)
        texts = obs["instruction_text"]
        texts = [texts] if isinstance(texts, str) else list(texts)
        keys = ("rgb", "depth", f"{LOOKDOWN}_rgb", "odometry")
        arrays = {k: to_numpy(obs[k]) for k in keys if obs.get(k) is not None}
        out = []
        for i in range(n):
            one = {"instruction_text": texts[i], "lookdown_rgb": arrays[f"{LOOKDOWN}_rgb"][i]}
            one.update({k: arrays[k][i] for k in ("rgb", "depth", "odometry") if k in arrays})
            out.append(self.runtime.step(i, one, deterministic))
        return np.stack(out).astype(np.float32)
