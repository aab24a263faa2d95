"""Every registered agent's config dataclass in Hydra's ConfigStore, group ``agent``.

``configs/agent/<name>.yaml`` (``<name>`` = the registry key = ``Agent.name``) extends the schema stored here
as ``agent/<name>_schema``::

    defaults:
      - <name>_schema
      - _self_

so trainers and benchmarks compose ``agent=<name>`` against the agent's own dataclass, and a misspelt key in
the YAML or on the command line fails at composition, naming the key. An agent without such a YAML (one
registered by a ``NAVGYM_PLUGINS`` module) is also stored as ``agent/<name>``, its defaults being the YAML.
Hydra does not call ``__post_init__`` while composing; ``OmegaConf.to_object`` on the composed node builds
the dataclass and runs its checks.

:func:`check_known_keys` closes the one gap composition leaves: Hydra's ``+key=value`` adds a key even to a
typed node, and ``OmegaConf.to_object`` then drops it without a word. Both entry points (``trainers/run.py``
and ``benchmarks/run.py``) call it on the composed config.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

import agents  # noqa: F401  (registers every agent)
from agents.base import AGENTS

GROUP = "agent"
#: The agent group's YAML files.
AGENT_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / GROUP


def schema_name(agent_name: str) -> str:
    """ConfigStore name of an agent's schema: ``<name>_schema``."""
    return f"{agent_name}_schema"


def register_agent_configs(cs: ConfigStore | None = None) -> ConfigStore:
    """Store ``agent/<name>_schema`` for every registered agent; returns the ConfigStore.

    Idempotent (storing the same node again replaces it).
    """
    cs = cs or ConfigStore.instance()
    for name in AGENTS.names():
        node = AGENTS.get(name).config_class
        cs.store(group=GROUP, name=schema_name(name), node=node)
        if not (AGENT_CONFIG_DIR / f"{name}.yaml").is_file():
            cs.store(group=GROUP, name=name, node=node)
    return cs


def unknown_keys(cfg: DictConfig, prefix: str = "") -> list[tuple[str, list[str]]]:
    """``(dotted key, valid fields)`` of every key of ``cfg`` that is not a field of its node's dataclass.

    Nodes typed by a dataclass are checked, recursively; untyped nodes (a ``_target_`` leaf such as the
    scheduler) are free-form and pass as they are.
    """
    found: list[tuple[str, list[str]]] = []
    node_type = OmegaConf.get_type(cfg)
    fields = (
        sorted(f.name for f in dataclasses.fields(node_type)) if dataclasses.is_dataclass(node_type) else None
    )
    for key in cfg.keys():
        path = f"{prefix}{key}"
        if fields is not None and key not in fields:
            found.append((path, fields))
            continue
        child = cfg._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            found += unknown_keys(child, f"{path}.")
    return found


def check_known_keys(cfg: DictConfig) -> None:
    """Fail when a composed config holds a key its schema does not know (added with ``+key=value``).

    Raises:
        ValueError: names every unknown key and the valid fields of the node it was added to.
    """
    found = unknown_keys(cfg)
    if not found:
        return
    lines = []
    for key, fields in found:
        parent = key.rpartition(".")[0] or "the top level"
        lines.append(f"  {key}: not a field of {parent}; valid fields: {', '.join(fields)}")
    raise ValueError("unknown config key(s) (+key=value adds no field to a schema):\n" + "\n".join(lines))


register_agent_configs()
