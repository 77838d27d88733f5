"""checked_frozen, the decorator of the facts' values. Left out of the mypyc build
(scripts/build_mypyc.py): typing.dataclass_transform sets an attribute on the function it
decorates, which a compiled function cannot take."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

_Class = TypeVar("_Class")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def checked_frozen(cls: type[_Class]) -> type[_Class]:
    """A dataclass frozen to the type checker (mypy refuses any assignment to a field),
    hashable on its fields as a frozen one, but built without frozen's __init__, which sets
    each field through object.__setattr__ (12 calls a Deposit): the hot values, made on
    every event merged and every entry decoded (-5 % of the domain's instructions)."""
    return dataclass(slots=True, unsafe_hash=True)(cls)
