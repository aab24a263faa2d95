"""Seq2Seq VLN-CE agent (Krantz et al. 2020)."""

from agents.seq2seq.agent import Seq2SeqAgent, Seq2SeqNet
from agents.seq2seq.config import Seq2SeqConfig

__all__ = ["Seq2SeqAgent", "Seq2SeqConfig", "Seq2SeqNet"]
