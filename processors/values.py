"""Value, the base of the domain's immutable values: the versions of a fact
(processors.facts), a document's reach, a unit's outcome.

A value's fields are declared Final: mypy refuses an assignment outside its __init__ (the
values are shared: cached, compared before and after a merge), and mypyc compiles them to
read-only attributes of a native class. A value may keep what it derives from its fields on
first read in an attribute whose name starts with "_" (not a field: set by its property only).
Each class writes its __init__ out rather than being a dataclass: a dataclass's generated
__init__ is interpreted Python even in the compiled build (a frozen one sets each field through
object.__setattr__), and these are made on every event merged and every entry decoded. Equal
and hashed on `_fields()`, as a frozen dataclass is on its compared fields;
tests/processors/test_facts.py checks every field is Final and that mypy refuses an assignment.
"""

from __future__ import annotations

from typing import ClassVar


class Value:
    __slots__ = ()
    # the names of `_fields()`, for the repr
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def _fields(self) -> tuple[object, ...]:
        """What the value is equal and hashed on (derived fields left out)."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Value)
        return self is other or self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        """A dataclass's: `Deposit(event_id='e', ...)`."""
        shown = ", ".join(
            f"{name}={field!r}" for name, field in zip(self.FIELDS, self._fields(), strict=True)
        )
        return f"{type(self).__name__}({shown})"
