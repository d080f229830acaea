"""One registry type for everything the driver finds by name: model kinds and suites.

A registry maps names to classes. Built-in classes register themselves with `register` (a class decorator); other
packages add theirs through an entry-point group (`rmorch.kinds`, `rmorch.suites`), loaded on first look-up. A name
the registry does not know is a UserError with a did-you-mean.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Generic, TypeVar

from rmorch.core.errors import SpecError, UserError, did_you_mean

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes of one family (subclasses of `base`) by name; the name is the class attribute `name_attr`."""

    def __init__(self, what: str, base: T, name_attr: str, entry_points: str):
        self.what = what  # "model kind", "suite": how messages name an entry
        self.base = base
        self.name_attr = name_attr
        self.entry_points = entry_points
        self._classes: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, cls: T) -> T:
        """Register `cls` under its name (a class decorator). A second class under the same name is a bug."""
        name = getattr(cls, self.name_attr)
        existing = self._classes.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"{self.what} '{name}' registered twice: {existing.__module__} and {cls.__module__}")
        self._classes[name] = cls
        return cls

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            return self._classes[name]
        except KeyError:
            raise UserError(f"unknown {self.what} '{name}'{did_you_mean(name, self._classes)}") from None

    def find(self, name: str) -> T | None:
        """The class registered as `name`, or None."""
        self._load_plugins()
        return self._classes.get(name)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._classes)

    def alias(self, name: str, base_name: str) -> T:
        """A subclass of the class registered as `base_name`, registered as `name` (a spec entry `{name: my-prefs,
        kind: file}` gets its own class, so that everything it produces carries the user's name). The same pair
        always gives the same class; a name already taken by another class is a SpecError on `name`."""
        base = self.get(base_name)
        existing = self.find(name)
        if existing is not None:
            if getattr(existing, "_alias_of", None) is base:
                return existing
            raise SpecError("name", f"'{name}' is already the name of a {self.what} ({existing.__module__}); "
                                    f"give this {base_name} {self.what} another name")
        cls = type(f"{base.__name__}_{name}", (base,),
                   {self.name_attr: name, "_alias_of": base, "__module__": base.__module__})
        return self.register(cls)

    @contextmanager
    def scoped(self) -> Iterator[None]:
        """Registrations made inside the block are dropped at its end (tests that register throw-away classes)."""
        saved = dict(self._classes)
        try:
            yield
        finally:
            self._classes.clear()
            self._classes.update(saved)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in metadata.entry_points(group=self.entry_points):
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise UserError(f"entry point {self.entry_points}:{ep.name} ({ep.value}) is not a "
                                f"{self.base.__name__} subclass")
            self.register(cls)
