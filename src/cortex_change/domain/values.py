"""Plain value classes: what `@dataclass` generated, without importing `dataclasses` (start-up time).

`import dataclasses` pulls in `inspect`, `ast`, `dis` and `tokenize` (~7 ms), and each decorated
class costs ~0.5 ms more to build, on every CLI command. A value class here declares `__slots__`
and an explicit, typed `__init__` (so mypy checks every construction, as it did the dataclass's),
and inherits equality, `repr` and `copy_with` over its fields: the parameters of its `__init__`,
in their order, each kept in the attribute of the same name (as a dataclass's fields are).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self


class Value:  # noqa: PLW1641  # unhashable, like a mutable dataclass (__eq__ sets __hash__ to None)
    """Equality and `repr` over the fields."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        init = cls.__dict__.get("__init__")
        if init is not None:  # else the fields are its base's
            code = init.__code__  # reading the code object needs no `inspect`
            cls._fields = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # mypy narrows `other` to this class

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__qualname__}({fields})"

    def copy_with(self, **changes: Any) -> Self:
        """A new value built from this one's fields with `changes` (what `dataclasses.replace` did:
        through `__init__`, unknown names refused with TypeError, the rest shared, not copied)."""
        build: Any = self.__class__  # its own __init__ takes every field by name
        new: Self = build(**{**{name: getattr(self, name) for name in self._fields}, **changes})
        return new


class Frozen(Value):
    """A value never changed after construction, hashable over its fields like a frozen dataclass
    (hashing one that holds a list or dict raises TypeError, as it did).

    Subclasses declare their attributes `Final` in `__init__`, so mypy refuses any assignment;
    Python does not check at run time (a `__setattr__` guard would slow every construction).
    """

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values())
