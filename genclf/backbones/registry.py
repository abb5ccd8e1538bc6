"""Backbone registry: `@register` a class, `get(name)` it back; unknown names list the valid ones."""

from __future__ import annotations

from genclf.errors import unknown

BACKBONES: dict[str, type] = {}


def register(cls: type) -> type:
    BACKBONES[cls.name] = cls
    return cls


def get(name: str) -> type:
    if name not in BACKBONES:
        raise unknown("backbone", name, BACKBONES)
    return BACKBONES[name]


def names() -> list[str]:
    return list(BACKBONES)
