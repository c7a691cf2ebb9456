"""The cost of each call: price tables, cost at completion, and what it is never."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import respx
from click.testing import CliRunner

from audited_openai import (
    AuditedOpenAI,
    ErrorContext,
    GenerationLogRepository,
    ResponseMetadata,
    cli,
    prices,
    query,
)
from audited_openai._models import Cost
from tests.conftest import BASE_URL, chat_body, execute, make_context, rows

MESSAGES = [{"role": "user", "content": "Definieer 'verdachte'."}]

TABLE = """
version = "contract-2026"
currency = "EUR"

[models.reasoner]
input = 1.00
cached_input = 0.25
output = 4.00
reasoning = 8.00

[models."gpt-4o"]
input = "2.30"
output = 9.20
"""


def priced(repo: GenerationLogRepository, response: ResponseMetadata, model: str = "gpt-4o") -> Any:
    """A row completed with ``response`` through the spec's API; the row read back."""
    ctx = make_context()
    ctx.prompt.model_params.name = model
    log_id = repo.create_pending_log(ctx)
    ctx.mark_success(response)
    repo.update_with_response(log_id, ctx)
    return repo.get(log_id)


def test_the_sdk_call_is_priced_from_its_usage_with_cached_tokens(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """chat_body's usage: 1,234 prompt tokens of which 1,024 cached, 567 completion
    tokens (7 reasoning, at the output price): gpt-4o at 2.50 / 1.25 / 10.00 a million.
    By hand: 210 x 2.50 + 1,024 x 1.25 + 567 x 10.00 = 7,475 millionths of a dollar."""
    router.post("/chat/completions").respond(200, json=chat_body())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    (row,) = rows(db_path)
    assert (row["cost_nanos"], row["cost_currency"], row["price_version"]) == (
        7_475_000,
        "USD",
        prices.DEFAULT_VERSION,
    )
    log = query.history(db_path)[0]
    assert log.cost == Cost(Decimal("0.007475"), "USD", prices.DEFAULT_VERSION)
    assert query.verify(db_path).ok


def test_reasoning_tokens_at_their_own_price_from_a_toml_table(tmp_path: Path) -> None:
    """1,000 prompt tokens (200 cached), 500 completion tokens (300 reasoning): by hand
    800 x 1.00 + 200 x 0.25 + 200 x 4.00 + 300 x 8.00 = 4,050 millionths of a euro."""
    table = tmp_path / "prices.toml"
    table.write_text(TABLE)
    with GenerationLogRepository(tmp_path / "a.db", prices=table) as repo:
        log = priced(
            repo,
            ResponseMetadata(
                tokens_prompt=1000, tokens_completion=500, tokens_cached=200, tokens_reasoning=300
            ),
            model="reasoner",
        )
    assert log.cost == Cost(Decimal("0.00405"), "EUR", "contract-2026")


def test_the_responses_model_snapshot_finds_its_family_and_not_a_shorter_one(
    tmp_path: Path,
) -> None:
    """gpt-4o-mini-2024-07-18 is priced as gpt-4o-mini (0.15 / 0.60), not as gpt-4o."""
    with GenerationLogRepository(tmp_path / "a.db") as repo:
        log = priced(
            repo,
            ResponseMetadata(
                tokens_prompt=1000, tokens_completion=1000, response_model="gpt-4o-mini-2024-07-18"
            ),
            model="gpt-4o-mini",
        )
    assert log.cost is not None
    assert log.cost.amount == Decimal("0.00075")  # 1,000 x 0.15 + 1,000 x 0.60, a million
    assert prices.DEFAULT.find("gpt-4-0613") == prices.DEFAULT.models["gpt-4"]
    assert prices.DEFAULT.find("gpt-4o-realtime") is None


def test_an_unknown_model_or_missing_usage_has_no_cost_and_a_failure_is_not_priced(
    repo: GenerationLogRepository,
) -> None:
    """Never a made-up number: the row says which table was asked, and no amount."""
    unknown = priced(repo, ResponseMetadata(tokens_prompt=5, tokens_completion=5), "llama-3-70b")
    assert unknown.cost == Cost(None, "USD", prices.DEFAULT_VERSION)
    no_usage = priced(repo, ResponseMetadata(content="stream without usage"))
    assert no_usage.cost == Cost(None, "USD", prices.DEFAULT_VERSION)
    ctx = make_context()
    log_id = repo.create_pending_log(ctx)
    ctx.mark_failed(ErrorContext("rate limited", "RateLimitError", http_status=429))
    repo.update_with_error(log_id, ctx)
    assert repo.get(log_id).cost is None
    assert repo.verify().ok


def test_a_later_price_change_does_not_rewrite_what_a_row_cost(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    usage = ResponseMetadata(tokens_prompt=1_000_000, tokens_completion=0)
    with GenerationLogRepository(db) as repo:
        before = priced(repo, usage)
    table = tmp_path / "prices.json"
    table.write_text(
        json.dumps({"currency": "EUR", "models": {"gpt-4o": {"input": 3, "output": 9}}})
    )
    with GenerationLogRepository(db, prices=table) as repo:
        after = priced(repo, usage)
        assert repo.get(before.id).cost == Cost(Decimal("2.5"), "USD", prices.DEFAULT_VERSION)  # type: ignore[arg-type]
    assert after.cost is not None
    assert (after.cost.amount, after.cost.currency) == (Decimal(3), "EUR")
    assert after.cost.price_version.startswith("sha256:")  # the file named no version
    assert query.verify(db).ok


def test_the_cost_per_day_sums_one_currency_and_names_what_is_unpriced(tmp_path: Path) -> None:
    """stats' days: the sum of the priced rows; a day in two currencies has no sum."""
    db, table = tmp_path / "a.db", tmp_path / "prices.toml"
    table.write_text(TABLE)
    usage = ResponseMetadata(tokens_prompt=1_000_000, tokens_completion=0)
    with GenerationLogRepository(db) as repo:
        priced(repo, usage)
        priced(repo, usage, model="gpt-4o-2024-08-06")
        priced(repo, usage, model="a-model-nobody-prices")
        ((day,),) = [query.token_usage_by_day(repo)]
        assert (day["cost"], day["cost_currency"], day["priced"]) == (Decimal(5), "USD", 2)
        assert day["generations"] == 3  # one of them without a price
        assert [row["cost"] for row in query.most_expensive(repo, 3)] == [
            None,
            Decimal("2.5"),
            Decimal("2.5"),
        ]
    with GenerationLogRepository(db, prices=table) as repo:
        priced(repo, usage)
        ((day,),) = [query.token_usage_by_day(repo)]
        assert (day["cost"], day["cost_currency"], day["priced"]) == (None, None, 3)


def test_the_environment_names_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "prices.toml"
    table.write_text(TABLE)
    monkeypatch.setenv(prices.ENV_PRICES, str(table))
    with GenerationLogRepository(tmp_path / "a.db") as repo:
        assert (repo.prices.version, repo.prices.currency) == ("contract-2026", "EUR")


def test_a_bad_table_in_the_environment_does_not_stop_the_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading never prices: logs, show and compare work; a writer still refuses the file."""
    db = tmp_path / "a.db"
    GenerationLogRepository(db).close()
    bad = tmp_path / "prices.json"
    bad.write_text("{not json")
    monkeypatch.setenv(prices.ENV_PRICES, str(bad))
    for command in (["logs"], ["stats"], ["compare", "2.1", "2.2"]):
        result = CliRunner().invoke(cli.main, ["--db", str(db), *command])
        assert result.exit_code == 0, result.output
    with pytest.raises(prices.PricesError, match=r"prices\.json"):
        GenerationLogRepository(db)
    with GenerationLogRepository(db, read_only=True) as repo, pytest.raises(prices.PricesError):
        repo.prices  # noqa: B018 - asked for, it is read


def test_the_cost_is_computed_on_the_writers_thread(
    client: AuditedOpenAI, router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off the caller's path: the call returns while the writer prices its row."""
    threads: list[str] = []
    real = GenerationLogRepository._priced

    def spy(repo: GenerationLogRepository, ctx: Any) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return real(repo, ctx)

    monkeypatch.setattr(GenerationLogRepository, "_priced", spy)
    router.post("/chat/completions").respond(200, json=chat_body())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    client.audit_store.flush()
    assert len(threads) == 1
    assert threads[0] != threading.current_thread().name


def test_a_changed_cost_is_caught_by_verify(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    router.post("/chat/completions").respond(200, json=chat_body())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    client.audit_store.flush()
    execute(db_path, "UPDATE generation_logs SET cost_nanos = 1")
    found = query.verify(db_path)
    assert not found.ok


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("currency = 'EUR'\n[models.m]\ninput = 1\n", "p.toml", "model 'm' has no output price"),
        (
            "currency = 'EUR'\n[models.m]\ninput = -1\noutput = 1\n",
            "p.toml",
            "input must be 0 or more",
        ),
        ("currency = 'euro'\n[models.m]\ninput = 1\noutput = 1\n", "p.toml", "ISO 4217"),
        ("currency = 'EUR'\n", "p.toml", "at least one model"),
        (
            "currency = 'EUR'\n[models.m]\ninput = 1\noutput = 1\ncache = 2\n",
            "p.toml",
            "unknown price 'cache'",
        ),
        ("[models", "p.toml", "not valid TOML or JSON"),
        (
            '{"currency": "EUR", "models": {"m": {"input": "x", "output": 1}}}',
            "p.json",
            "must be a number",
        ),
        ('{"currency": "EUR", "prices": {}}', "p.json", "unknown key 'prices'"),
    ],
)
def test_a_bad_table_is_one_clear_line_and_opens_nothing(
    tmp_path: Path, text: str, name: str, message: str
) -> None:
    table = tmp_path / name
    table.write_text(text)
    db = tmp_path / "a.db"
    with pytest.raises(prices.PricesError, match=message) as caught:
        GenerationLogRepository(db, prices=table)
    assert "\n" not in str(caught.value)
    assert str(table) in str(caught.value)
    assert not db.exists()


def test_a_missing_table_says_so(tmp_path: Path) -> None:
    with pytest.raises(prices.PricesError, match="cannot read the price table"):
        prices.load(tmp_path / "absent.toml")
    with pytest.raises(TypeError, match="prices must be a PriceTable or a path"):
        GenerationLogRepository(tmp_path / "a.db", prices=42)  # type: ignore[arg-type]


def test_the_default_table_round_trips_through_its_file_format(tmp_path: Path) -> None:
    table = tmp_path / "defaults.json"
    table.write_text(json.dumps(prices.DEFAULT.to_dict()))
    assert prices.load(table) == prices.DEFAULT


def test_the_async_client_prices_too(db_path: Path) -> None:
    import asyncio

    from tests.conftest import async_client

    async def call() -> None:
        with respx.mock(base_url=BASE_URL) as router:
            router.post("/chat/completions").respond(200, json=chat_body())
            async with async_client(db_path) as client:
                await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    asyncio.run(call())
    assert rows(db_path)[0]["cost_nanos"] == 7_475_000


def test_show_says_what_a_row_cost_and_why_it_may_be_unknown(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from audited_openai import cli

    db = tmp_path / "a.db"
    with GenerationLogRepository(db) as repo:
        known = priced(repo, ResponseMetadata(tokens_prompt=1000, tokens_completion=100))
        unknown = priced(repo, ResponseMetadata(tokens_prompt=1, tokens_completion=1), "llama")
    runner = CliRunner()
    shown = runner.invoke(cli.main, ["--db", str(db), "show", str(known.id)]).stdout
    assert f"  cost         0.0035 USD (prices {prices.DEFAULT_VERSION})" in shown.splitlines()
    shown = runner.invoke(cli.main, ["--db", str(db), "show", str(unknown.id)]).stdout
    assert "  cost         unknown: no price for the model or no usage" in shown
