"""ab: a deterministic arm per key, near its weight over many keys, recorded on the rows."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING

import pytest

from audited_openai import AuditedOpenAI, ab, audit_context
from tests.conftest import async_client, chat_body, rows

if TYPE_CHECKING:
    from pathlib import Path

    import respx

MESSAGES = [{"role": "user", "content": "Definieer 'getuige'."}]
EVEN = {"2.0": 0.5, "2.1": 0.5}


def _by_hand(key: str, salt: str, arms: dict[str, float]) -> str:
    """The documented rule, written out: 8 bytes of SHA-256(salt NUL key) on the weights
    in the order of the names."""
    point = int.from_bytes(hashlib.sha256((salt + "\0" + key).encode()).digest()[:8], "big")
    target, reached = point / 2**64 * sum(arms.values()), 0.0
    for name in sorted(arms):
        reached += arms[name]
        if target < reached:
            return name
    raise AssertionError("no arm")


def test_the_same_key_gets_the_same_arm_whatever_the_order_of_the_arms() -> None:
    """Regenerating a begrip keeps it in its arm; the arms' order in the dict is not used."""
    first = ab.choose("verdachte", EVEN, salt="proef-1")
    assert all(ab.choose("verdachte", EVEN, salt="proef-1") == first for _ in range(100))
    assert ab.choose("verdachte", {"2.1": 0.5, "2.0": 0.5}, salt="proef-1") == first


def test_the_rule_is_the_documented_one() -> None:
    """A change of the rule would move live keys between arms: it is pinned."""
    arms = {"a": 1, "b": 2, "c": 7}
    for n in range(500):
        key = f"begrip-{n}"
        assert ab.choose(key, arms, salt="s") == _by_hand(key, "s", arms)
    # one known value, computed outside the library (hashlib on the command line)
    assert hashlib.sha256(b"s\0begrip-0").hexdigest()[:16] == "19d16133057a99c1"
    # 0x19d16133057a99c1 / 2**64 * 10 = 1.0085...: past a (0-1), inside b (1-3)
    assert ab.choose("begrip-0", arms, salt="s") == "b"


@pytest.mark.parametrize(
    "arms",
    [EVEN, {"a": 0.2, "b": 0.8}, {"x": 1, "y": 1, "z": 2}],
    ids=["even", "20-80", "three"],
)
def test_arms_get_their_weights_over_10000_keys(arms: dict[str, float]) -> None:
    """Each arm's share within four standard deviations of its weight."""
    n = 10_000
    counts = dict.fromkeys(arms, 0)
    for key in range(n):
        counts[ab.choose(f"begrip {key}", arms, salt="weging")] += 1
    total = sum(arms.values())
    for name, weight in arms.items():
        p = weight / total
        assert abs(counts[name] - n * p) < 4 * (n * p * (1 - p)) ** 0.5, (name, counts)


def test_a_new_salt_deals_the_keys_again() -> None:
    """Two experiments' assignments are independent: about half the keys change arm."""
    keys = [f"begrip {n}" for n in range(2_000)]
    moved = sum(ab.choose(k, EVEN, salt="één") != ab.choose(k, EVEN, salt="twee") for k in keys)
    assert 850 < moved < 1150


@pytest.mark.parametrize(
    ("key", "arms", "salt", "error", "message"),
    [
        ("", EVEN, "", TypeError, "the key must be a non-empty string"),
        (7, EVEN, "", TypeError, "the key must be a non-empty string"),
        ("k", {}, "", ValueError, "arms must be a non-empty mapping"),
        ("k", ["2.0"], "", ValueError, "arms must be a non-empty mapping"),
        ("k", {"a": 0}, "", ValueError, "the weight of arm 'a' must be a number above 0"),
        ("k", {"a": -1, "b": 1}, "", ValueError, "the weight of arm 'a'"),
        ("k", {"a": float("nan")}, "", ValueError, "the weight of arm 'a'"),
        ("k", {"a": True}, "", ValueError, "the weight of arm 'a'"),
        ("k", {"a": "0.5"}, "", ValueError, "the weight of arm 'a'"),
        ("k", {"": 1}, "", TypeError, "an arm's name must be a non-empty string"),
        ("k", EVEN, None, TypeError, "the salt must be a string"),
    ],
)
def test_bad_input_is_refused_in_one_line(
    key: object, arms: object, salt: object, error: type[Exception], message: str
) -> None:
    """A mistake says what is wrong, at the call."""
    with pytest.raises(error, match=message):
        ab.choose(key, arms, salt=salt)  # type: ignore[arg-type]


def test_the_rows_of_an_experiment_carry_its_name_and_arm(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """Inside ``ab.experiment`` every row records the experiment and the arm, beside the
    app's own metadata; outside it nothing is added. The salt is the experiment's name."""
    router.post("/chat/completions").respond(json=chat_body())
    with audit_context(7, metadata={"app": "definitie"}):
        with (
            ab.experiment("definitie-v2.1", "getuige", EVEN) as version,
            audit_context(template_version=version),
        ):
            client.chat.completions.create(model="gpt-4", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert version == ab.choose("getuige", EVEN, salt="definitie-v2.1")
    inside, after = rows(db_path)
    assert json.loads(str(inside["additional_metadata"])) == {
        "app": "definitie",
        "experiment": "definitie-v2.1",
        "arm": version,
    }
    assert inside["prompt_template_version"] == version
    assert json.loads(str(after["additional_metadata"])) == {"app": "definitie"}


def test_an_experiment_in_async_code(db_path: Path, router: respx.MockRouter) -> None:
    """The binding follows the task, as audit_context's does."""
    router.post("/chat/completions").respond(json=chat_body())

    async def main() -> str:
        audited = async_client(db_path)
        async with audited:
            with ab.experiment("proef", "verdachte", EVEN, salt="vast") as arm:
                await audited.chat.completions.create(model="gpt-4", messages=MESSAGES)
        return arm

    arm = asyncio.run(main())
    assert arm == ab.choose("verdachte", EVEN, salt="vast")
    (row,) = rows(db_path)
    assert json.loads(str(row["additional_metadata"]))["arm"] == arm


def test_an_experiment_needs_a_name() -> None:
    """An unnamed experiment could not be selected later."""
    with (
        pytest.raises(TypeError, match="the experiment's name must be a non-empty string"),
        ab.experiment("", "k", EVEN),
    ):
        pass
