"""`Frozen`: the base of small immutable records on the CLI's hot path, without `dataclasses`.

Importing `dataclasses` pulls in `inspect` (ast, dis, tokenize, ...): about 10 ms, which is most
of what `vmkit list` may spend above `python -c pass`. A subclass names its fields, in order, in
`_fields`, sets `__slots__ = _fields`, annotates them, and its `__init__` passes every value, in
that order, to `_init`.
It then behaves like `@dataclass(frozen=True, slots=True)`: equality and hash over the fields,
a repr naming them, assignment raises AttributeError, pickling and copying work. `replace` is
`dataclasses.replace`, `as_dict` a shallow `dataclasses.asdict`.
The store's records (vmkit.state.records) are Frozen, so `vmkit list` imports no
`dataclasses`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms at start-up; mypy and ruff know this spelling
if TYPE_CHECKING:
    from typing import Any, Self


class Frozen:
    _fields: tuple[str, ...] = ()
    __slots__ = ()

    def _init(self, *values: object) -> None:
        for name, value in zip(self._fields, values, strict=True):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def as_dict(self) -> dict[str, Any]:
        """Field name -> value, in field order (shallow)."""
        return {name: getattr(self, name) for name in self._fields}

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed."""
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        return type(self)(**{**self.as_dict(), **changes})

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Frozen)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({fields})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field '{name}' of a frozen record")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field '{name}' of a frozen record")

    def __reduce__(self) -> tuple[type[Self], tuple[object, ...]]:
        return type(self), self._values()
