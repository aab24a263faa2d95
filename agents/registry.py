"""A small generic name → object registry, one instance per kind (agents, trainers, benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to registered objects (usually classes) of one kind.

    Example:
        >>> TRAINERS = Registry("trainer")
        >>> @TRAINERS.register("bc")
        ... class BCTrainer: ...
        >>> TRAINERS.get("bc") is BCTrainer
        True

    Args:
        kind: what the registry holds, used in error messages (``"agent"``, ``"trainer"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering an object under ``name``.

        Raises:
            ValueError: ``name`` is empty or already registered to another object.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} registry: name must be a non-empty string, got {name!r}")

        def decorator(obj: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered to {existing!r}")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The object registered under ``name``.

        Raises:
            KeyError: unknown name; the message lists the valid names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
