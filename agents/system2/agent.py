"""The System-2 agent: InternVLA-N1's Qwen2.5-VL pixel-goal planner with a shortest-path follower.

Training is Qwen2.5-VL's supervised fine-tuning: cross-entropy on the assistant tokens of one conversation
per sample (:mod:`agents.system2.conversation`). Acting asks the model (greedy ``generate``) with the
instruction, up to ``n_history`` earlier frames and the current frame; ``↓`` adds the look-down view and asks
again; the answer becomes actions through :mod:`agents.system2.acting` and the environment's navigator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from agents.base import AGENTS, Agent, VocabLike, to_numpy
from agents.contract import CameraRequest, SampleSpec
from agents.system2 import acting
from agents.system2.acting import LOOKDOWN, EnvMemory
from agents.system2.config import System2Config
from agents.system2.conversation import IGNORE_INDEX, STOP_TEXT, Answer, encode, parse_answer
from agents.system2.model import (
    build_processor,
    load_files,
    load_pretrained,
    save_files,
    tiny_model_config,
)
from agents.system2.tokenizer import train_tokenizer
from envs.navigator import NAVIGATOR_KEY

log = logging.getLogger(__name__)
_MODEL_KEYS = ("input_ids", "attention_mask", "labels", "pixel_values", "image_grid_thw")


class System2ItemTransform:
    """Item -> model tensors, run in the data loader's workers (pickles with the processor, no weights).

    Reads ``instruction_text``, ``history`` (K, H, W, 3), ``current`` (H, W, 3), ``lookdown`` (h, w, 3),
    ``kind`` and ``answer``; adds ``input_ids``, ``attention_mask``, ``labels`` (L,) and ``pixel_values``
    (N, D), ``image_grid_thw`` (n_images, 3).
    """

    def __init__(self, processor: Any, image_size: int | None, n_history: int) -> None:
        self.processor, self.image_size, self.n_history = processor, image_size, n_history

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        history = list(to_numpy(item["history"]))
        if len(history) > self.n_history:
            keep = np.unique(np.linspace(0, len(history) - 1, self.n_history).round().astype(int))
            history = [history[i] for i in keep] if self.n_history else []
        lookdown = item.get("lookdown")
        tensors = encode(
            self.processor, str(item["instruction_text"]), history, to_numpy(item["current"]),
            None if lookdown is None else to_numpy(lookdown), str(item["answer"]), str(item["kind"]),
            self.image_size,
        )  # fmt: skip
        return {**item, **tensors}


@AGENTS.register("system2")
class System2Agent(Agent):
    """System 2 (InternVLA-N1): Qwen2.5-VL answering a pixel goal in a look-down image, turns or STOP.

    Observations: ``rgb`` (B, H, W, 3), ``lookdown_rgb`` (B, h, w, 3) and ``lookdown_depth`` (B, h, w, 1) from
    the look-down camera (pitch −30°), ``instruction_text`` and ``navigator`` (one
    :class:`envs.navigator.Navigator` per environment, added by the rollout). Training batches: pixel-goal
    samples (see :class:`System2ItemTransform`).

    Args:
        config: a :class:`System2Config`.
        vocab, instructions: the tiny tokenizer's corpus when ``config.corpus_split`` is None (instruction
            texts, else the vocabulary's words).
        directory: a checkpoint folder to rebuild from (its saved model config and processor; no weights
            are read here, nothing from ``model_path``).
    """

    name = "system2"
    config_class = System2Config
    action_mode = "discrete"
    tasks = ("vln",)
    requires_navigator = True
    cameras = (CameraRequest(), CameraRequest(uuid=LOOKDOWN, pitch=-30.0, modalities=("rgb", "depth")))
    sample = SampleSpec(kind="pixel_goal")
    max_shard_bytes = 4 * 1024**3
    fsdp_units = ("Qwen2_5_VLDecoderLayer", "Qwen2_5_VLVisionBlock")

    def __init__(
        self,
        config: System2Config,
        vocab: VocabLike | None = None,
        instructions: Iterable[str] | None = None,
        directory: str | Path | None = None,
    ) -> None:
        instructions = None if instructions is None else list(instructions)
        super().__init__(config, vocab=vocab, instructions=instructions)
        dtype = getattr(torch, config.dtype)
        if directory is not None:
            self.model, self.processor = load_files(Path(directory), dtype)
        elif config.is_tiny:
            tokenizer = train_tokenizer(self._corpus(instructions), config.vocab_size)
            self.processor = build_processor(tokenizer, config.min_pixels, config.max_pixels)
            self.model = _tiny_model(config, tokenizer, dtype)
        else:
            self.model, self.processor = load_pretrained(
                config.model_path, dtype, config.min_pixels, config.max_pixels
            )
        if config.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.tokenizer = self.processor.tokenizer
        self._stop_token: int | None = None
        self._init_state(0)

    def _corpus(self, instructions: list[str] | None) -> list[str]:
        if self.config.corpus_split is not None:
            from envs.datasets.r2r import load_episodes

            split = load_episodes(self.config.corpus_split)
            return [ep.instruction.instruction_text for ep in split.episodes]
        if instructions is not None:
            return instructions
        if self.vocab is not None:
            return list(self.vocab.word_list)
        log.warning(
            "system2: no corpus (corpus_split, instructions or vocab): the BPE learns the prompt only"
        )
        return []

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None, directory: Path | None = None) -> Agent:
        return cls(config, vocab=vocab, directory=directory)

    def save_extra(self, directory: Path) -> list[str]:
        """``qwen2_5_vl/``: the model config, the tokenizer (with its chat template) and the processor."""
        return save_files(Path(directory), self.model, self.processor)

    def _tied_keys(self) -> list[str]:
        """State-dict keys of the output embedding when it shares the input embedding's tensor."""
        if not getattr(self.model.config, "tie_word_embeddings", False):
            return []
        return ["model.lm_head.weight"]

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        """The weights, without the tied output embedding (safetensors stores a tensor once)."""
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
        for key in self._tied_keys():
            state.pop(prefix + key, None)
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Load weights saved by :meth:`state_dict` (the tied output embedding comes from the input one)."""
        state = dict(state_dict)
        for key in self._tied_keys():
            state.setdefault(key, state["model.model.language_model.embed_tokens.weight"])
        return super().load_state_dict(state, strict=strict, assign=assign)

    def param_groups(self) -> list[dict[str, Any]]:
        """The vision tower (at ``lr_vision`` when set) and the rest."""
        vision = [p for n, p in self.model.named_parameters() if ".visual." in f".{n}" and p.requires_grad]
        ids = {id(p) for p in vision}
        rest = [p for p in self.parameters() if id(p) not in ids and p.requires_grad]
        group = {"params": vision} | ({"lr": self.config.lr_vision} if self.config.lr_vision else {})
        return [g for g in ({"params": rest}, group) if g["params"]]

    def item_transform(self) -> System2ItemTransform:
        """Encodes a pixel-goal item into the conversation's tensors (runs in loader workers)."""
        return System2ItemTransform(self.processor, self.config.image_size, self.config.n_history)

    # ------------------------------------------------------------------------------------------------- loss
    def loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """Cross-entropy on the assistant tokens of B conversations (padded here); ``batch`` is not modified.

        Args:
            batch: collated pixel-goal items, encoded by :meth:`item_transform` (``input_ids`` ... as lists
                of B tensors or stacked) or raw (``instruction_text``, ``history``, ``current``,
                ``lookdown``, ``kind``, ``answer``: encoded here).

        Returns:
            (loss, info): ``loss/ce`` and ``accuracy`` (greedy next-token accuracy on assistant tokens).
        """
        inputs = self.collate(batch)
        if not bool((inputs["labels"] != IGNORE_INDEX).any()):
            raise ValueError(
                "system2: no assistant token in this batch's labels (the chat template's assistant turns "
                f"were not found by the tokenizer); answers {list(batch.get('answer', []))[:4]}"
            )
        out = self.model(**inputs)
        labels = inputs["labels"][:, 1:]
        mask = labels != IGNORE_INDEX
        correct = (out.logits[:, :-1].argmax(-1) == labels) & mask
        accuracy = float(correct.sum()) / max(int(mask.sum()), 1)
        return out.loss, {"loss/ce": float(out.loss.detach()), "accuracy": accuracy}

    def collate(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Model inputs of a batch: ids, mask and labels right-padded to (B, L), pixel patches (N, D) and
        grids (n_images, 3) of every item in order, on the agent's device."""
        if "input_ids" not in batch:
            transform, n = self.item_transform(), len(batch["answer"])
            items = [transform({k: batch[k][i] for k in _RAW_KEYS if k in batch}) for i in range(n)]
            batch = {k: [it[k] for it in items] for k in _MODEL_KEYS}
        ids, mask, labels = (_rows(batch[k]) for k in ("input_ids", "attention_mask", "labels"))
        pad = self.tokenizer.pad_token_id
        dtype = next(self.model.parameters()).dtype
        return {
            "input_ids": pad_sequence(ids, batch_first=True, padding_value=pad).to(self.device),
            "attention_mask": pad_sequence(mask, batch_first=True, padding_value=0).to(self.device),
            "labels": pad_sequence(labels, batch_first=True, padding_value=IGNORE_INDEX).to(self.device),
            "pixel_values": torch.cat(_rows(batch["pixel_values"])).to(self.device, dtype),
            "image_grid_thw": torch.cat(_rows(batch["image_grid_thw"])).to(self.device),
        }

    # ----------------------------------------------------------------------------------------------- acting
    def _init_state(self, n_envs: int) -> None:
        self.memory = [EnvMemory() for _ in range(n_envs)]

    def _clear_state(self, env_ids: np.ndarray) -> None:
        for i in env_ids:
            self.memory[int(i)] = EnvMemory()

    @torch.no_grad()
    def generate(self, instruction: str, history: Sequence[Any], current: Any, lookdown: Any = None) -> str:
        """The model's greedy answer (special tokens dropped) to one query; ``lookdown`` continues the
        conversation after ``↓``. With ``config.stop_min_prob``, a STOP answered with less probability
        (of its first token) gives way to the best answer without that token."""
        q = encode(self.processor, instruction, history, current, lookdown, image_size=self.config.image_size)
        dtype = next(self.model.parameters()).dtype
        inputs = {
            "input_ids": q["input_ids"][None].to(self.device),
            "attention_mask": q["attention_mask"][None].to(self.device),
            "pixel_values": q["pixel_values"].to(self.device, dtype),
            "image_grid_thw": q["image_grid_thw"].to(self.device),
            "max_new_tokens": self.config.max_new_tokens,
            "do_sample": False,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        n = q["input_ids"].shape[0]
        if self.config.stop_min_prob is None:
            return self.tokenizer.decode(self.model.generate(**inputs)[0, n:], skip_special_tokens=True)
        out = self.model.generate(**inputs, output_scores=True, return_dict_in_generate=True)
        stop = self.stop_token()
        first = int(out.sequences[0, n])
        if first == stop and float(out.scores[0][0].float().softmax(-1)[stop]) < self.config.stop_min_prob:
            sequence = self.model.generate(**inputs, suppress_tokens=[stop])[0]
        else:
            sequence = out.sequences[0]
        return self.tokenizer.decode(sequence[n:], skip_special_tokens=True)

    def stop_token(self) -> int:
        """The id of the first token of the STOP answer, as the chat template tokenises an answer."""
        if self._stop_token is None:
            blank = np.zeros((28, 28, 3), np.uint8)
            q = encode(self.processor, "", [], blank, answer=STOP_TEXT, kind="stop", image_size=None)
            self._stop_token = int(q["input_ids"][q["labels"] != IGNORE_INDEX][0])
        return self._stop_token

    def ask(self, instruction: str, memory: EnvMemory, lookdown_rgb: Any) -> Answer:
        """Query System 2 about the newest frame; a ``↓`` answer is followed by the look-down query."""
        history = acting.history_frames(memory.frames, self.config.n_history)
        text = self.generate(instruction, history, memory.frames[-1])
        answer = parse_answer(text)
        if answer.kind == "lookdown":
            text = self.generate(instruction, history, memory.frames[-1], lookdown_rgb)
            answer = parse_answer(text)
        memory.last_answer = text
        return answer

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B,) int64 actions: pending turns, then the follower toward the pixel goal, else a fresh answer."""
        n = self._check_batch(obs)
        navigators = obs.get(NAVIGATOR_KEY)
        if navigators is None or len(navigators) != n:
            raise KeyError(
                f"system2 needs obs[{NAVIGATOR_KEY!r}], one envs.navigator.Navigator per env (the rollout "
                f"adds it for agents with requires_navigator); got keys {sorted(obs)}"
            )
        texts = obs["instruction_text"]
        texts = [texts] if isinstance(texts, str) else list(texts)
        rgb, look_rgb = to_numpy(obs["rgb"]), to_numpy(obs[f"{LOOKDOWN}_rgb"])
        look_depth = to_numpy(obs[f"{LOOKDOWN}_depth"])
        actions = np.zeros(n, np.int64)
        for i in range(n):
            memory = self.memory[i]
            memory.frames.append(np.asarray(rgb[i], np.uint8))
            if memory.pending:
                actions[i] = memory.pending.popleft()
                continue
            action = acting.follow(memory, navigators[i], self.config.goal_radius)
            if action is None:
                answer = self.ask(str(texts[i]), memory, look_rgb[i])
                action = acting.decide(
                    answer, memory, navigators[i], look_depth[i], self.config.follow_steps,
                    self.config.goal_radius,
                )  # fmt: skip
            actions[i] = action
        return actions


_RAW_KEYS = ("instruction_text", "history", "current", "lookdown", "kind", "answer")


def _rows(value: Any) -> list[Tensor]:
    """A list of per-item tensors from a list or a stacked (B, ...) tensor."""
    return list(value) if isinstance(value, torch.Tensor) else [torch.as_tensor(v) for v in value]


def _tiny_model(config: System2Config, tokenizer: Any, dtype: torch.dtype) -> Any:
    from transformers import Qwen2_5_VLForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration(tiny_model_config(config, tokenizer)).to(dtype)
