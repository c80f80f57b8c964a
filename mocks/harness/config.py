"""A mock's settings, changed over `_mock/config`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar


class ConfigError(ValueError):
    """A `_mock/config` body that cannot be applied."""


@dataclass
class MockConfig:
    """Base of a mock's settings: partial updates over `_mock/config`, all-or-nothing.

    String fields take strings; float fields take numbers >= 0, or > 0 when named in POSITIVE.
    """

    POSITIVE: ClassVar[frozenset[str]] = frozenset()

    def update(self, changes: Any) -> None:
        if not isinstance(changes, dict):
            raise ConfigError("body must be a JSON object")
        types = {f.name: f.type for f in fields(self)}
        for key, value in changes.items():
            if key not in types:
                raise ConfigError(f"unknown config key: {key}")
            if types[key] == "str" and not isinstance(value, str):
                raise ConfigError(f"{key} must be a string")
            if types[key] == "float":
                number = not isinstance(value, bool) and isinstance(value, int | float)
                if key in self.POSITIVE and not (number and value > 0):
                    raise ConfigError(f"{key} must be a positive number")
                if not (number and value >= 0):
                    raise ConfigError(f"{key} must be a non-negative number")
        for key, value in changes.items():
            setattr(self, key, float(value) if types[key] == "float" else value)
