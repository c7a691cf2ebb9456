"""MkDocs hook: every public name of the library has a docstring, or the build warns.

``mkdocs build --strict`` turns the warning into a failure, so the API reference
(generated from the docstrings by mkdocstrings) cannot silently show an empty entry.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import Any

log = logging.getLogger("mkdocs.hooks.docstrings")

# The modules the API reference documents: the package's names and its public modules.
PUBLIC = (
    "audited_openai",
    "audited_openai.query",
    "audited_openai.dossier",
    "audited_openai.prices",
    "audited_openai.ab",
    "audited_openai.redact",
    "audited_openai.testing",
    "audited_openai.streamlit",
)


def _public_names(module: Any) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == module.__name__
    ]


def _own_members(cls: type) -> list[tuple[str, Any]]:
    return [
        (name, value)
        for name, value in vars(cls).items()
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))
    ]


def missing() -> list[str]:
    """The public names without a docstring, as ``module.name``."""
    found = []
    for module_name in PUBLIC:
        module = importlib.import_module(module_name)
        if not inspect.getdoc(module):
            found.append(module_name)
        for name in _public_names(module):
            value = getattr(module, name)
            if not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
            if not (value.__doc__ or "").strip():
                found.append(f"{module_name}.{name}")
            if inspect.isclass(value) and value.__module__.startswith("audited_openai"):
                found.extend(
                    f"{module_name}.{name}.{member}"
                    for member, attr in _own_members(value)
                    if not (attr.__doc__ or "").strip()
                )
    return found


def on_config(config: Any) -> Any:
    """Warn once for each public name without a docstring."""
    for name in missing():
        log.warning("public name without a docstring: %s", name)
    return config
