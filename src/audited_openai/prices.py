"""What a call cost: a price table per model, and the cost of a completed row.

A :class:`PriceTable` holds, per model, the prices per 1,000,000 tokens of input, cached
input, output and (where it differs from output) reasoning, in one currency, under a
version. Each successful row is priced when it is completed, on the writer's thread,
and keeps its cost with the table's version (columns ``cost_nanos``, ``cost_currency``,
``price_version``): a later change of prices never rewrites what a row cost.

The defaults (:data:`DEFAULT`) are OpenAI's list prices in US dollars for its current
text models, as dated by :data:`DEFAULT_VERSION`. An app names its own table with
``GenerationLogRepository(..., prices="prices.toml")`` or ``$AUDITED_OPENAI_PRICES``
(TOML or JSON)::

    version = "contract-2026"        # optional: else the file's SHA-256
    currency = "EUR"
    [models."gpt-4o"]
    input = 2.30                     # per 1,000,000 tokens
    cached_input = 1.15              # optional: else the input price
    output = 9.20
    reasoning = 9.20                 # optional: else the output price

A model is found by its name as the response gave it (``gpt-4o-2024-08-06``), else
that name without its dated snapshot suffix (``gpt-4o``), else the requested name.
A model the table lacks, or a response without usage, gets no cost (``None``), never a
made-up number.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from audited_openai._errors import AuditedOpenAIError

ENV_PRICES = "AUDITED_OPENAI_PRICES"
_PER = Decimal(1_000_000)  # prices are per 1,000,000 tokens
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")  # gpt-4o-2024-08-06, gpt-4-0613


class PricesError(AuditedOpenAIError, ValueError):
    """A price table that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Price:
    """One model's prices per 1,000,000 tokens (``None``: as input, or as output)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    reasoning: Decimal | None = None


@dataclass(frozen=True)
class PriceTable:
    """Prices per model in one currency, under a version that rows keep."""

    version: str
    currency: str
    models: dict[str, Price]

    def find(self, *names: str | None) -> Price | None:
        """The price of the first of ``names`` the table knows, snapshot suffix or not."""
        for name in names:
            if not name:
                continue
            price = self.models.get(name) or self.models.get(_SNAPSHOT.sub("", name))
            if price is not None:
                return price
        return None

    def cost(
        self,
        model: str | None,
        *,
        tokens_prompt: int | None,
        tokens_completion: int | None,
        tokens_cached: int | None = None,
        tokens_reasoning: int | None = None,
        requested: str | None = None,
    ) -> Decimal | None:
        """What a call cost, or ``None`` when the model has no price or usage is missing.

        OpenAI counts cached tokens inside the prompt tokens and reasoning tokens inside
        the completion tokens; each part is charged at its own price.
        """
        price = self.find(model, requested)
        if price is None or tokens_prompt is None or tokens_completion is None:
            return None
        cached = min(tokens_cached or 0, tokens_prompt)
        reasoning = min(tokens_reasoning or 0, tokens_completion)
        cached_price = price.input if price.cached_input is None else price.cached_input
        reasoning_price = price.output if price.reasoning is None else price.reasoning
        total = (
            (tokens_prompt - cached) * price.input
            + cached * cached_price
            + (tokens_completion - reasoning) * price.output
            + reasoning * reasoning_price
        )
        return total / _PER

    def to_dict(self) -> dict[str, Any]:
        """The table as the file format holds it (prices as strings, exactly)."""
        return {
            "version": self.version,
            "currency": self.currency,
            "models": {
                name: {k: str(v) for k, v in vars(price).items() if v is not None}
                for name, price in sorted(self.models.items())
            },
        }


DEFAULT_VERSION = "openai-2026-12-07"
# OpenAI's list prices (USD per 1M tokens, standard tier) for its text models, from
# openai.com/api/pricing as mirrored by public price tables, read on the date of
# DEFAULT_VERSION. Verify against your invoice; name your own table for contract prices.
_DEFAULTS: dict[str, tuple[str, str | None, str]] = {
    # model: (input, cached input, output)
    "gpt-5": ("1.25", "0.125", "10.00"),
    "gpt-5-mini": ("0.25", "0.025", "2.00"),
    "gpt-5-nano": ("0.05", "0.005", "0.40"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "gpt-4.1-mini": ("0.40", "0.10", "1.60"),
    "gpt-4.1-nano": ("0.10", "0.025", "0.40"),
    "gpt-4o": ("2.50", "1.25", "10.00"),
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "o1": ("15.00", "7.50", "60.00"),
    "o3": ("2.00", "0.50", "8.00"),
    "o3-mini": ("1.10", "0.55", "4.40"),
    "o4-mini": ("1.10", "0.275", "4.40"),
    "gpt-4-turbo": ("10.00", None, "30.00"),
    "gpt-4": ("30.00", None, "60.00"),
    "gpt-3.5-turbo": ("0.50", None, "1.50"),
}
DEFAULT = PriceTable(
    version=DEFAULT_VERSION,
    currency="USD",
    models={
        name: Price(
            input=Decimal(i), output=Decimal(o), cached_input=None if c is None else Decimal(c)
        )
        for name, (i, c, o) in _DEFAULTS.items()
    },
)


def load(path: str | os.PathLike[str]) -> PriceTable:
    """Read a price table from a TOML or JSON file (see the module docstring)."""
    where = os.fspath(path)
    try:
        raw = Path(where).read_bytes()
    except OSError as exc:
        raise PricesError(f"cannot read the price table {where}: {exc.strerror}") from exc
    try:
        data = json.loads(raw) if where.endswith(".json") else _toml(where).loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError is a ValueError
        raise PricesError(f"the price table {where} is not valid TOML or JSON: {exc}") from exc
    version = "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
    return from_dict(data, where=where, version=version)


def _toml(where: str) -> Any:
    """The standard library's TOML reader (Python 3.11 on); on 3.10, name a JSON table."""
    try:
        return importlib.import_module("tomllib")
    except ModuleNotFoundError:
        raise PricesError(f"reading {where} needs Python 3.11 (tomllib): use JSON") from None


def from_dict(data: Any, *, where: str = "prices", version: str | None = None) -> PriceTable:
    """A price table from its file format's dictionary; ``version`` if it names none."""
    if not isinstance(data, dict):
        raise PricesError(f"{where}: a price table is a table of models, not {type(data).__name__}")
    unknown = set(data) - {"version", "currency", "models"}
    if unknown:
        raise PricesError(f"{where}: unknown key {min(unknown)!r} (version, currency, models)")
    models, currency = data.get("models"), data.get("currency")
    named = data.get("version", version)
    if not isinstance(named, str) or not named.strip():
        raise PricesError(f"{where}: version must be a non-empty string")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise PricesError(
            f"{where}: currency must be an ISO 4217 code such as EUR, not {currency!r}"
        )
    if not isinstance(models, dict) or not models:
        raise PricesError(f"{where}: models must be a table with at least one model")
    return PriceTable(
        version=named.strip(),
        currency=currency,
        models={str(name): _price(where, str(name), entry) for name, entry in models.items()},
    )


def _price(where: str, name: str, entry: Any) -> Price:
    if not isinstance(entry, dict):
        raise PricesError(f"{where}: model {name!r} must be a table of prices")
    unknown = set(entry) - {"input", "output", "cached_input", "reasoning"}
    if unknown:
        raise PricesError(
            f"{where}: model {name!r} has unknown price {min(unknown)!r}"
            " (input, cached_input, output, reasoning)"
        )
    values: dict[str, Decimal | None] = {}
    for key in ("input", "output", "cached_input", "reasoning"):
        value = entry.get(key)
        if value is None and key in ("input", "output"):
            raise PricesError(f"{where}: model {name!r} has no {key} price")
        values[key] = None if value is None else _amount(where, name, key, value)
    return Price(**values)  # type: ignore[arg-type]


def _amount(where: str, name: str, key: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PricesError(f"{where}: model {name!r}: {key} must be a number, not {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PricesError(
            f"{where}: model {name!r}: {key} must be a number, not {value!r}"
        ) from None
    if not amount.is_finite() or amount < 0:
        raise PricesError(f"{where}: model {name!r}: {key} must be 0 or more, not {value!r}")
    return amount


def resolve_prices(prices: PriceTable | str | os.PathLike[str] | None) -> PriceTable:
    """The table to price with: given, a file, ``$AUDITED_OPENAI_PRICES``, or the defaults."""
    if isinstance(prices, PriceTable):
        return prices
    if prices is None:
        named = os.environ.get(ENV_PRICES)
        return load(named) if named else DEFAULT
    if isinstance(prices, (str, os.PathLike)):
        return load(prices)
    raise TypeError(
        f"prices must be a PriceTable or a path, not {type(prices).__name__} {prices!r}"
    )
