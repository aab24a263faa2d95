"""System 2's conversation: the prompt, the chat turns of a sample, tokens with assistant-only labels, and
the parsing of an answer.

One exchange (after InternVLA-N1's pixel-goal SFT data, anchors Part A §2.5, in our own words):

    system     You are a navigation assistant that moves a robot through a building.
    user       Your task: <instruction>. Where should you go next to stay on the route? Answer with the pixel
               (row col) of the next waypoint in the image, arrows to turn, or STOP once the task is done.
               Your earlier views: <image>×K. Your current view: <image>.
    assistant  ↓                      (pixel-goal samples only: look down)
    user       The view looking down: <image>.
    assistant  "{row} {col}" | "←←" | "STOP"

Labels are -100 everywhere except the assistant tokens (their text and their ``<|im_end|>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.system2.tokenizer import IM_END, IM_START
from envs.tasks import pixel_goal

IGNORE_INDEX = -100
#: What follows ``<|im_start|>`` in an assistant turn.
ASSISTANT_HEADER = "assistant\n"
LOOK_DOWN = "↓"
TURN_LEFT_ARROW, TURN_RIGHT_ARROW = (
    pixel_goal.ARROWS[pixel_goal.TURN_LEFT],
    pixel_goal.ARROWS[pixel_goal.TURN_RIGHT],
)
STOP_TEXT = pixel_goal.STOP_TEXT
SYSTEM_PROMPT = "You are a navigation assistant that moves a robot through a building."
TASK_PROMPT = (
    "Your task: {instruction}. Where should you go next to stay on the route? Answer with the pixel "
    "(row col) of the next waypoint in the image, arrows to turn, or STOP once the task is done."
)
HISTORY_PROMPT = " Your earlier views: "
CURRENT_PROMPT = " Your current view: "
LOOKDOWN_PROMPT = "The view looking down: "
#: Sample kinds and the answers they carry.
ANSWER_KINDS = ("pixel", "turn", "stop")


def prompt_texts() -> list[str]:
    """The fixed prompt texts (they belong in a tokenizer's training corpus)."""
    return [SYSTEM_PROMPT, TASK_PROMPT, HISTORY_PROMPT, CURRENT_PROMPT, LOOKDOWN_PROMPT]


def _image() -> dict[str, str]:
    return {"type": "image"}


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def messages_for(
    instruction: str, n_history: int, answer: str | None = None, looked_down: bool = False
) -> list[dict[str, Any]]:
    """Chat messages of one query.

    Args:
        instruction: the instruction text (a trailing full stop is dropped).
        n_history: history images before the current one.
        answer: the target answer (training), or None (acting: the conversation ends with a user turn).
        looked_down: add the look-down exchange (assistant ``↓``, user with the look-down image) before
            ``answer``: pixel-goal samples, or acting once the model asked to look down.
    """
    content = [_text(TASK_PROMPT.format(instruction=instruction.strip().rstrip(".")))]
    if n_history:
        content += [_text(HISTORY_PROMPT), *[_image() for _ in range(n_history)], _text(".")]
    content += [_text(CURRENT_PROMPT), _image(), _text(".")]
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]
    if looked_down:
        messages += [
            {"role": "assistant", "content": LOOK_DOWN},
            {"role": "user", "content": [_text(LOOKDOWN_PROMPT), _image(), _text(".")]},
        ]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def assistant_labels(input_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """(L,) labels: the ids of the assistant turns' text and their ``<|im_end|>``, -100 elsewhere.

    An assistant turn starts after the tokens of ``<|im_start|>assistant\\n`` and ends with ``<|im_end|>``.
    """
    ids = input_ids.tolist()
    start, end = tokenizer.convert_tokens_to_ids(IM_START), tokenizer.convert_tokens_to_ids(IM_END)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for i, token in enumerate(ids):
        if token != start:
            continue
        # The header "assistant\n" is one to len("assistant\n") tokens, depending on the tokenizer's merges.
        for k in range(1, len(ASSISTANT_HEADER) + 1):
            header = tokenizer.decode(ids[i + 1 : i + 1 + k])
            if header == ASSISTANT_HEADER:
                first = i + 1 + k
                last = ids.index(end, first) if end in ids[first:] else len(ids) - 1
                labels[first : last + 1] = input_ids[first : last + 1]
                break
            if not ASSISTANT_HEADER.startswith(header):
                break
    return labels


def resize_rgb(image: Any, size: int | None) -> Any:
    """An (H, W, 3) uint8 image resized to ``size``×``size`` (bilinear, PIL), or as it is when None."""
    from PIL import Image

    array = np.asarray(image, dtype=np.uint8)
    if size is None or array.shape[:2] == (size, size):
        return array
    return np.asarray(Image.fromarray(array).resize((size, size), Image.BILINEAR))


def encode(
    processor,
    instruction: str,
    history: Sequence[Any],
    current: Any,
    lookdown: Any = None,
    answer: str | None = None,
    kind: str | None = None,
    image_size: int | None = None,
) -> dict[str, torch.Tensor]:
    """Token ids, labels and pixel values of one query (one sample when ``answer`` is given).

    Args:
        processor: a ``Qwen2_5_VLProcessor``.
        instruction: the instruction text.
        history: K (H, W, 3) uint8 earlier frames; current: the (H, W, 3) uint8 current frame.
        lookdown: the (h, w, 3) uint8 look-down frame (``pixel`` samples, or acting after ``↓``).
        answer, kind: the target (training) or None (acting: ends with the generation prompt).
        image_size: side history and current frames are resized to (the look-down frame keeps its size).

    Returns:
        ``input_ids`` (L,) int64, ``attention_mask`` (L,), ``labels`` (L,) (-100 but on assistant tokens),
        ``pixel_values`` (N, D) float32 patches of every image in order, ``image_grid_thw`` (n_images, 3).
    """
    looked_down = kind == "pixel" if answer is not None else lookdown is not None
    if looked_down and lookdown is None:
        raise ValueError("encode: a pixel-goal sample needs its look-down image")
    messages = messages_for(instruction, len(history), answer, looked_down)
    text = processor.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=answer is None
    )
    images = [resize_rgb(f, image_size) for f in history] + [resize_rgb(current, image_size)]
    if looked_down:
        images.append(np.asarray(lookdown, dtype=np.uint8))
    out = processor(text=[text], images=images, return_tensors="pt")
    ids = out["input_ids"][0]
    return {
        "input_ids": ids,
        "attention_mask": out["attention_mask"][0],
        "labels": assistant_labels(ids, processor.tokenizer),
        "pixel_values": out["pixel_values"],
        "image_grid_thw": out["image_grid_thw"],
    }


@dataclass(frozen=True)
class Answer:
    """A parsed System-2 answer.

    Attributes:
        kind: ``pixel``, ``turn``, ``stop``, ``lookdown`` (the model asks for the look-down view) or
            ``unknown``.
        pixel: (row, col) in the look-down image for ``pixel``.
        turns: ``←`` / ``→`` in order for ``turn`` (each one 15° turn).
    """

    kind: str
    pixel: tuple[int, int] | None = None
    turns: tuple[str, ...] = field(default_factory=tuple)


def parse_answer(text: str) -> Answer:
    """Read a generated answer with the shared rules of :func:`envs.tasks.pixel_goal.parse_answer` (two
    integers are a pixel goal (row, col), as InternVLA-N1's evaluator reads them; the word STOP; arrows only),
    plus ``↓``, the model asking for the look-down view; anything else is ``unknown``."""
    kind, value = pixel_goal.parse_answer(text)
    if kind == "pixel":
        return Answer("pixel", pixel=value)
    if kind == "turn":
        return Answer("turn", turns=tuple(pixel_goal.ARROWS[a] for a in value))
    if kind == "stop":
        return Answer("stop")
    if text.strip() == LOOK_DOWN:
        return Answer("lookdown")
    return Answer("unknown")
