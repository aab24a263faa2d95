"""The tiny System-2 tokenizer: a byte-level BPE trained on our instruction corpus, with Qwen2.5-VL's chat
and vision special tokens, wrapped as a ``PreTrainedTokenizerFast`` with a Qwen-style chat template.

The special tokens come first, so their ids are fixed (``SPECIAL_TOKENS`` order) and the tiny model's config
takes them from :func:`special_token_ids`; a real Qwen2.5-VL tokenizer is checked for the same tokens by
:func:`check_vision_tokens`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

END_OF_TEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
#: Special tokens of Qwen2.5-VL that the conversation and the model use, in id order for the tiny tokenizer.
SPECIAL_TOKENS = (
    END_OF_TEXT, IM_START, IM_END, VISION_START, VISION_END, "<|vision_pad|>", IMAGE_PAD, VIDEO_PAD,
)  # fmt: skip
#: Tokens the model's config names by id (config attribute -> token).
VISION_TOKENS = {
    "image_token_id": IMAGE_PAD,
    "video_token_id": VIDEO_PAD,
    "vision_start_token_id": VISION_START,
    "vision_end_token_id": VISION_END,
}
#: Answer vocabulary the BPE must cover well: digits, the turn and look-down arrows, STOP.
ANSWER_TEXTS = ("0 1 2 3 4 5 6 7 8 9", "← → ↓ ←← →→ ←←← →→→ ←←←← →→→→", "STOP")

#: Qwen2-VL's chat template (images as ``<|vision_start|><|image_pad|><|vision_end|>``), without tools or
#: video, and without the default system prompt (our conversations always carry one).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE of at most ``vocab_size`` tokens trained on ``corpus`` (plus the answer vocabulary
    and the prompt's words), the special tokens first.

    Args:
        corpus: texts (instructions, or the words of an instruction vocabulary).
        vocab_size: total tokens, special ones included.

    Returns:
        The tokenizer with ``chat_template``, ``eos_token`` ``<|im_end|>``, ``pad_token``
        ``<|endoftext|>``.
    """
    from agents.system2.conversation import prompt_texts  # the prompt's own words belong in the corpus

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=int(vocab_size),
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [str(t) for t in corpus] + list(ANSWER_TEXTS) * 20 + prompt_texts() * 20
    texts += ["system", "user", "assistant"] * 20
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in (IM_END, END_OF_TEXT)],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def special_token_ids(tokenizer) -> dict[str, int]:
    """Config attribute -> id of every vision token (``image_token_id``, ...), checked first."""
    check_vision_tokens(tokenizer, "tokenizer")
    return {attr: int(tokenizer.convert_tokens_to_ids(tok)) for attr, tok in VISION_TOKENS.items()}


def check_vision_tokens(tokenizer, source: str) -> None:
    """Raise ``ValueError`` naming ``source`` and the token when the tokenizer lacks one of Qwen2.5-VL's chat
    or vision special tokens."""
    vocab = tokenizer.get_vocab()
    for token in (IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD):
        if token not in vocab:
            raise ValueError(
                f"{source}: the tokenizer lacks the special token {token!r} that Qwen2.5-VL needs "
                f"(expected a Qwen2.5-VL tokenizer with {', '.join(VISION_TOKENS.values())})"
            )
