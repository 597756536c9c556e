"""A small registry: name -> entry, with lazy "module:attr" entries and did-you-mean errors.

Lazy entries keep heavy backends (face-alignment, pymatting's JIT, ...) out of `import animbench`.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Callable, Dict, Generic, Iterator, List, TypeVar, Union

from animbench.errors import UserError

T = TypeVar("T")


def import_attr(path: str):
    """Import "package.module:attr" and return the attribute."""
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # "model", "metric", "dataset", ... (used in error messages)
        self._entries: Dict[str, Union[T, str]] = {}
        self._help: Dict[str, str] = {}

    def register(self, name: str, entry: Union[T, str, None] = None, help: str = "") -> Callable:
        """Register `entry` (object or lazy "module:attr" string) under `name`; usable as a decorator."""

        def _add(obj):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            self._help[name] = help
            return obj

        if entry is None:
            return _add
        return _add(entry)

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UserError(self.unknown_message(name))
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = import_attr(entry)
            self._entries[name] = entry
        return entry

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(sorted(self._entries))
        return f"unknown {self.kind} {name!r}; {hint + ' ' if hint else ''}known: {known}"

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def names(self) -> List[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
