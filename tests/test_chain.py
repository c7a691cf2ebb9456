"""The tamper-evident chain: verify catches every kind of edit behind the library's back,
on both backends, and passes after the library's own erasure, reconcile and adoption."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from audited_openai import GenerationLogRepository, ResponseMetadata, _verify, query
from audited_openai._chain import digest, state
from audited_openai._errors import InvalidLogError, StoreError
from audited_openai._rows import CHAINED, EVENTS
from audited_openai.cli import EXIT_UNVERIFIED, main
from tests.conftest import as_schema, execute, fetch, host, host_connection, make_context, rows


def _trail(repo: GenerationLogRepository, calls: int = 5) -> list[int]:
    """Calls as the client writes them: pending, completed, linked (every other one)."""
    ids = []
    for n in range(calls):
        context = make_context()
        context.prompt.full_text = f"prompt {n}: wat is een verdachte?"
        log_id = repo.create_pending_log(context)
        context.mark_success(ResponseMetadata(content=f"antwoord {n}", tokens_total=10 + n))
        repo.update_with_response(log_id, context)
        ids.append(log_id)
    repo.flush()
    return ids


def _kinds(verified: query.Verification) -> list[str]:
    return [problem.kind for problem in verified.problems]


@pytest.fixture
def trail(repo: GenerationLogRepository, target: str) -> tuple[str, list[int]]:
    """A store holding five completed calls: (target, their ids)."""
    return target, _trail(repo)


def test_a_trail_written_through_the_library_verifies(trail: tuple[str, list[int]]) -> None:
    target, ids = trail
    verified = query.verify(target)
    assert verified.ok, verified.problems
    assert (verified.events, verified.rows) == (2 * len(ids), len(ids))
    assert verified.summary().startswith("verified: 10 events, 5 rows")


def test_one_character_changed_in_a_prompt_is_caught(trail: tuple[str, list[int]]) -> None:
    target, ids = trail
    execute(
        target,
        "UPDATE generation_logs SET prompt_full_text = replace(prompt_full_text, 'verdachte', "
        "'verdachtE') WHERE id = ?",
        (ids[2],),
    )
    verified = query.verify(target)
    assert _kinds(verified) == ["row_changed"]
    assert verified.problems[0].log_id == ids[2]
    assert "prompt_full_text" in verified.problems[0].message


def test_a_changed_number_is_named(trail: tuple[str, list[int]]) -> None:
    target, ids = trail
    execute(target, "UPDATE generation_logs SET tokens_total = 1 WHERE id = ?", (ids[0],))
    (problem,) = query.verify(target).problems
    assert "tokens_total" in problem.message


def test_a_row_deleted_with_plain_sql_is_caught(trail: tuple[str, list[int]]) -> None:
    target, ids = trail
    execute(target, "DELETE FROM generation_logs WHERE id = ?", (ids[1],))
    verified = query.verify(target)
    assert _kinds(verified) == ["row_deleted"]
    assert verified.problems[0].log_id == ids[1]


def test_a_row_inserted_with_plain_sql_is_caught(trail: tuple[str, list[int]]) -> None:
    target, _ = trail
    execute(
        target,
        "INSERT INTO generation_logs (prompt_full_text, model_name, generation_status) "
        "VALUES ('achteraf', 'gpt-4', 'success')",
    )
    verified = query.verify(target)
    assert _kinds(verified) == ["row_inserted"]


def test_two_events_swapped_are_caught(trail: tuple[str, list[int]]) -> None:
    target, _ = trail
    for statement in (
        f"UPDATE {EVENTS} SET seq = -1 WHERE seq = 3",
        f"UPDATE {EVENTS} SET seq = 3 WHERE seq = 4",
        f"UPDATE {EVENTS} SET seq = 4 WHERE seq = -1",
    ):
        execute(target, statement)
    verified = query.verify(target)
    assert "event" in _kinds(verified)
    assert {p.seq for p in verified.problems if p.kind == "event"} >= {3}


def test_an_event_rewritten_with_its_hash_recomputed_breaks_the_next_link(
    trail: tuple[str, list[int]],
) -> None:
    """Forging one event's state and hash does not help: the event after it no longer
    follows; only rewriting the whole tail would, which a checkpoint shows."""
    from audited_openai._chain import link_hash

    target, ids = trail
    execute(target, "UPDATE generation_logs SET tokens_total = 99 WHERE id = ?", (ids[0],))
    conn = host_connection(target)
    (prev,) = conn.execute(f"SELECT hash FROM {EVENTS} WHERE seq = 1").fetchone()
    event = list(conn.execute(f"SELECT seq, log_id, definitie_id, kind, at, note, state FROM {EVENTS} WHERE seq = 2").fetchone())  # fmt: skip
    event[6] = state(conn.execute(f"SELECT {', '.join(CHAINED)} FROM generation_logs WHERE id = {ids[0]}").fetchone())  # fmt: skip
    assert '"sha256:' in event[6]
    conn.execute(
        f"UPDATE {EVENTS} SET state = {_mark(target)}, hash = {_mark(target)} WHERE seq = 2",
        (event[6], link_hash(prev, event)),
    )
    conn.close()
    verified = query.verify(target)
    assert [(p.kind, p.seq) for p in verified.problems] == [("event", 3)]


def test_the_last_ten_events_cut_off_are_caught_against_a_checkpoint(
    trail: tuple[str, list[int]], tmp_path: Path
) -> None:
    target, ids = trail
    (tmp_path / "cp.json").write_text(json.dumps(query.checkpoint(target)))
    repo = GenerationLogRepository(target)
    more = _trail(repo, 5)
    repo.close()
    saved = tmp_path / "later.json"
    saved.write_text(json.dumps(query.checkpoint(target)))
    # The tail cut and the rows of its calls with it: without a checkpoint it all fits.
    execute(target, f"DELETE FROM {EVENTS} WHERE seq > 10")
    execute(target, f"DELETE FROM generation_logs WHERE id >= {more[0]}")
    assert query.verify(target).ok
    assert query.verify(target, checkpoint=tmp_path / "cp.json").ok
    verified = query.verify(target, checkpoint=saved)
    assert _kinds(verified) == ["truncated"]
    assert "20" in verified.problems[0].message
    assert len(ids) == 5


def test_a_rewritten_history_is_caught_against_a_checkpoint(
    trail: tuple[str, list[int]], tmp_path: Path
) -> None:
    """Every event recomputed from the first (an attacker who knows the scheme): the
    chain holds in itself, but not against the checkpoint taken before."""
    from audited_openai._chain import GENESIS, link_hash

    target, ids = trail
    saved = tmp_path / "cp.json"
    saved.write_text(json.dumps(query.checkpoint(target)))
    execute(target, "DELETE FROM generation_logs WHERE id = ?", (ids[0],))
    conn = host_connection(target)
    conn.execute(f"DELETE FROM {EVENTS} WHERE log_id = {_mark(target)}", (ids[0],))
    events = conn.execute(
        f"SELECT seq, log_id, definitie_id, kind, at, note, state FROM {EVENTS} ORDER BY seq"
    ).fetchall()
    conn.execute(f"DELETE FROM {EVENTS}")
    prev = GENESIS
    for seq, old in enumerate(events, 1):
        event = (seq, *old[1:])
        prev = link_hash(prev, event)
        conn.execute(
            f"INSERT INTO {EVENTS} (seq, log_id, definitie_id, kind, at, note, state, hash) "
            f"VALUES ({', '.join([_mark(target)] * 8)})",
            (*event, prev),
        )
    conn.close()
    assert query.verify(target).ok, "a full rewrite holds in itself"
    verified = query.verify(target, checkpoint=saved)
    assert _kinds(verified) == ["truncated"]  # 8 events now, 10 then
    repo = GenerationLogRepository(target)
    _trail(repo, 1)
    repo.close()
    assert _kinds(query.verify(target, checkpoint=saved)) == ["checkpoint"]


def test_a_signed_checkpoint_holds_and_a_forged_one_is_caught(
    trail: tuple[str, list[int]], tmp_path: Path
) -> None:
    target, _ = trail
    private, public = _keys(tmp_path, "ours")
    _, other_public = _keys(tmp_path, "theirs")
    signed = query.checkpoint(target, key=private)
    assert signed["events"] == 10
    assert signed["signature"]
    verified = query.verify(target, checkpoint=signed, public_key=public)
    assert verified.ok
    assert verified.signature == "valid"
    assert query.verify(target, checkpoint=signed).notes() == [
        "the checkpoint is signed, but no public key was given to check it"
    ]
    forged = {**signed, "events": 8, "hash": signed["hash"]}
    verified = query.verify(target, checkpoint=forged, public_key=public)
    assert "forged_checkpoint" in _kinds(verified)
    assert verified.signature == "forged"
    assert _kinds(query.verify(target, checkpoint=signed, public_key=other_public)) == [
        "forged_checkpoint"
    ]
    unsigned = {k: v for k, v in signed.items() if k != "signature"}
    assert _kinds(query.verify(target, checkpoint=unsigned, public_key=public)) == [
        "forged_checkpoint"
    ]


def test_erasure_keeps_the_chain_and_the_digests_not_the_text(
    repo: GenerationLogRepository, target: str
) -> None:
    conn = host(target, (7, "verdachte"), (8, "getuige"))
    repo.refresh_host_objects()
    ids = _trail(repo, 4)
    for log_id in ids[:2]:
        repo.link_to_definitie(log_id, 7)
    repo.link_to_definitie(ids[2], 8)
    secret = repo.get(ids[0]).prompt.full_text
    runner = CliRunner()
    result = runner.invoke(main, ["--db", target, "erase", "--definitie", "7", "--yes"])
    assert result.exit_code == 0, result.output
    verified = query.verify(target)
    assert verified.ok, verified.problems
    assert (verified.erased, verified.rows) == (2, 2)
    assert "2 rows were erased" in " ".join(verified.notes())
    erasures = fetch(
        target,
        f"SELECT log_id, definitie_id, note, state FROM {EVENTS} WHERE kind = 'erase' ORDER BY seq",
    )
    assert [(e[0], e[1], e[3]) for e in erasures] == [(ids[0], 7, None), (ids[1], 7, None)]
    assert all("erase --definitie 7" in e[2] for e in erasures)
    dump = "\n".join(str(row) for row in fetch(target, f"SELECT * FROM {EVENTS}"))
    assert secret not in dump
    assert digest(secret) in dump, "the proof of what was there stays"
    # The host app deleting a definitie through its own connection: gone with it, said so.
    conn.execute("DELETE FROM definities WHERE id = 8")
    conn.close()
    verified = query.verify(target)
    assert verified.ok, verified.problems
    assert verified.host_erased == 1


def test_reconcile_is_chained(repo: GenerationLogRepository, target: str) -> None:
    _trail(repo, 2)
    repo.create_pending_log(make_context())
    repo.create_pending_log(make_context())
    time.sleep(0.01)
    assert repo.reconcile(timedelta(milliseconds=1)) == 2
    verified = query.verify(target)
    assert verified.ok, verified.problems
    kinds = [row[0] for row in fetch(target, f"SELECT kind FROM {EVENTS} ORDER BY seq")]
    assert kinds.count("reconcile") == 2
    assert kinds[-2:] == ["reconcile", "reconcile"]


def test_each_write_is_an_event_of_its_kind(repo: GenerationLogRepository, target: str) -> None:
    """The events of one call say what was done: the pending row, its completion, its link
    to a definitie, and a reconcile of another row that stayed pending."""
    (log_id,) = _trail(repo, 1)
    repo.link_to_definitie(log_id, 7)
    stale = repo.create_pending_log(make_context())
    time.sleep(0.01)
    assert repo.reconcile(timedelta(milliseconds=1)) == 1
    events = fetch(target, f"SELECT log_id, kind FROM {EVENTS} ORDER BY seq")
    assert events == [
        (log_id, "insert"),
        (log_id, "complete"),
        (log_id, "link"),
        (stale, "insert"),
        (stale, "reconcile"),
    ]


def test_threads_writing_at_once_keep_one_linear_chain(
    repo: GenerationLogRepository, target: str
) -> None:
    def work() -> None:
        _trail(repo, 10)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verified = query.verify(target)
    assert verified.ok, verified.problems
    assert (verified.events, verified.rows) == (160, 80)


def test_a_spec_database_is_chained_from_its_adoption(tmp_path: Path) -> None:
    from tests.test_schema import _spec_database

    db = tmp_path / "spec.db"
    _spec_database(db).close()
    with GenerationLogRepository(db) as repo:
        _trail(repo, 1)
    verified = query.verify(db)
    assert verified.ok, verified.problems
    assert (verified.adopted, verified.events, verified.rows) == (2, 4, 3)
    assert "2 rows were chained when the trail was adopted" in verified.notes()[0]
    assert "not covered" in verified.notes()[0]


def test_a_trail_without_the_chain_says_to_migrate(tmp_path: Path, unpriced: None) -> None:
    db = tmp_path / "old.db"
    with GenerationLogRepository(db) as repo:
        _trail(repo, 1)
    as_schema(db, 6)
    with pytest.raises(StoreError, match=r"schema version 6, .*: run `audited-openai migrate`"):
        GenerationLogRepository(db, read_only=True)
    result = CliRunner().invoke(main, ["--db", str(db), "verify"])
    assert result.exit_code == 3
    assert "run `audited-openai migrate` once" in result.output
    assert CliRunner().invoke(main, ["--db", str(db), "migrate"]).exit_code == 0
    verified = query.verify(db)
    assert (verified.ok, verified.adopted) == (True, 1)


def test_bad_checkpoints_and_keys_are_refused_clearly(
    trail: tuple[str, list[int]], tmp_path: Path
) -> None:
    target, _ = trail
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InvalidLogError, match="is not a checkpoint"):
        query.verify(target, checkpoint=bad)
    bad.write_text('{"format": "other"}')
    with pytest.raises(InvalidLogError, match="is not an audited-openai-checkpoint/1"):
        query.verify(target, checkpoint=bad)
    with pytest.raises(InvalidLogError, match="cannot read the checkpoint"):
        query.verify(target, checkpoint=tmp_path / "missing.json")
    with pytest.raises(InvalidLogError, match="is not a PEM private key"):
        query.checkpoint(target, key=bad)
    rsa_free = tmp_path / "x25519.pem"
    from cryptography.hazmat.primitives.asymmetric import x25519

    rsa_free.write_bytes(
        x25519.X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(InvalidLogError, match="is not an Ed25519 private key"):
        query.checkpoint(target, key=rsa_free)


def test_the_commands(trail: tuple[str, list[int]], tmp_path: Path) -> None:
    target, ids = trail
    private, public = _keys(tmp_path, "ours")
    runner = CliRunner()
    saved = tmp_path / "cp.json"
    result = runner.invoke(
        main, ["--db", target, "checkpoint", "--key", str(private), "-o", str(saved)]
    )
    assert result.exit_code == 0, result.output
    assert "signed checkpoint of 10 events" in result.output
    assert saved.stat().st_mode & 0o777 == 0o600
    result = runner.invoke(
        main,
        ["--db", target, "verify", "--checkpoint", str(saved), "--public-key", str(public)],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("verified: 10 events, 5 rows")
    assert "(signature valid)" in result.output
    stdout = runner.invoke(main, ["--db", target, "checkpoint"])
    assert json.loads(stdout.output)["hash"] == json.loads(saved.read_text())["hash"]

    execute(target, "UPDATE generation_logs SET model_name = 'gpt-3' WHERE id = ?", (ids[3],))
    result = runner.invoke(main, ["--db", target, "verify"])
    assert result.exit_code == EXIT_UNVERIFIED
    assert f"problem: log {ids[3]}: model_name no longer match" in result.output
    assert "NOT verified: 1 problem(s)" in result.output
    result = runner.invoke(main, ["--db", target, "verify", "--json"])
    assert result.exit_code == EXIT_UNVERIFIED
    found = json.loads(result.output)
    assert (found["ok"], found["problems"][0]["log_id"]) == (False, ids[3])
    result = runner.invoke(main, ["--db", target, "verify", "--public-key", str(public)])
    assert result.exit_code == 2
    assert "give one" in result.output


def test_progress_is_reported(tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    with GenerationLogRepository(db) as repo:
        for _ in range(40):
            futures = [repo.submit_pending_log(make_context()) for _ in range(250)]
            for future in futures:
                future.result()
    seen: list[tuple[int, int]] = []
    verified = query.verify(db, progress=lambda done, total: seen.append((done, total)))
    assert verified.ok
    assert seen == [(10_000, 20_000), (20_000, 20_000), (20_000, 20_000)]


# -- helpers ----------------------------------------------------------------------------------


def _mark(target: str | Path) -> str:
    return "%s" if str(target).startswith("postgresql://") else "?"


def _keys(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ed25519.Ed25519PrivateKey.generate()
    private, public = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_rows_helper_sees_the_events_table_apart(trail: tuple[str, list[int]]) -> None:
    """The chain lives in its own table: generation_logs keeps its columns."""
    target, ids = trail
    assert [row["id"] for row in rows(target)] == ids


def test_a_missing_event_in_the_middle_is_caught(trail: tuple[str, list[int]]) -> None:
    target, _ = trail
    execute(target, f"DELETE FROM {EVENTS} WHERE seq = 4")
    verified = query.verify(target)
    assert _kinds(verified)[:2] == ["missing_events", "event"]
    assert "events 4 to 4 are missing before event 5" in verified.problems[0].message


def test_an_erased_row_put_back_is_caught(repo: GenerationLogRepository, target: str) -> None:
    ids = _trail(repo, 2)
    execute(target, "UPDATE generation_logs SET definitie_id = 9 WHERE id = ?", (ids[0],))
    conn = host_connection(target)
    saved = conn.execute(f"SELECT {', '.join(CHAINED)} FROM generation_logs WHERE id = {ids[0]}").fetchone()  # fmt: skip
    conn.close()
    assert repo.erase_definitie(9) == 1
    marks = ", ".join([_mark(target)] * len(CHAINED))
    execute(target, f"INSERT INTO generation_logs ({', '.join(CHAINED)}) VALUES ({marks})".replace("%s", "?"), tuple(saved))  # fmt: skip
    verified = query.verify(target)
    assert "was erased (event" in verified.problems[-1].message
    assert "but is there" in verified.problems[-1].message


def test_one_row_is_checked_quickly(repo: GenerationLogRepository, target: str) -> None:
    ids = _trail(repo, 3)
    one = query.verify_log(target, ids[1])
    assert (one.ok, one.rows, one.events) == (True, 1, 6)
    execute(target, "UPDATE generation_logs SET response_content = 'x' WHERE id = ?", (ids[1],))
    assert query.verify_log(target, ids[1]).problems[0].message == (
        f"log {ids[1]}: response_content no longer match event 4 (complete)"
    )
    execute(target, "DELETE FROM generation_logs WHERE id = ?", (ids[2],))
    assert _kinds(query.verify_log(target, ids[2])) == ["row_deleted"]
    execute(
        target,
        "INSERT INTO generation_logs (prompt_full_text, model_name) VALUES ('x', 'gpt-4')",
    )
    (extra,) = [r["id"] for r in rows(target) if r["prompt_full_text"] == "x"]
    assert _kinds(query.verify_log(target, int(str(extra)))) == ["row_inserted"]
    assert query.verify_log(target, 10_000).ok, "no row, no event: nothing to say"
    execute(target, f"UPDATE {EVENTS} SET at = 'x' WHERE seq = 2")
    assert _kinds(query.verify_log(target, ids[0])) == ["event"]


def test_erased_rows_are_known_to_verify_log(repo: GenerationLogRepository, target: str) -> None:
    ids = _trail(repo, 1)
    execute(target, "UPDATE generation_logs SET definitie_id = 3 WHERE id = ?", (ids[0],))
    repo.erase_definitie(3)
    one = query.verify_log(target, ids[0])
    assert (one.ok, one.erased) == (True, 1)
    execute(target, "INSERT INTO generation_logs (id, prompt_full_text, model_name) VALUES (?, 'x', 'm')", (ids[0],))  # fmt: skip
    (back,) = query.verify_log(target, ids[0]).problems
    assert (back.kind, back.seq) == ("row_changed", 3)
    assert back.message == f"log {ids[0]} was erased (event 3) but is there"


def test_keys_that_cannot_be_read_or_signing_without_cryptography(
    trail: tuple[str, list[int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, _ = trail
    with pytest.raises(InvalidLogError, match="cannot read the private key"):
        query.checkpoint(target, key=tmp_path / "none.pem")
    signed = query.checkpoint(target, key=_keys(tmp_path, "k")[0])
    with pytest.raises(InvalidLogError, match="cannot read the public key"):
        query.verify(target, checkpoint=signed, public_key=tmp_path / "none.pub")
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives", None)
    with pytest.raises(InvalidLogError) as refused:
        query.checkpoint(target, key=tmp_path / "k.pem")
    assert str(refused.value) == (
        "signing checkpoints needs the cryptography package: pip install 'audited-openai[signing]'"
    )


def test_verify_shows_progress_on_a_terminal(
    trail: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from audited_openai import cli

    target, _ = trail
    real_console = Console
    monkeypatch.setattr(cli, "Console", lambda **kw: real_console(force_terminal=True, **kw))
    result = CliRunner().invoke(main, ["--db", target, "verify"])
    assert result.exit_code == 0, result.output
    assert "verifying" in result.output
    assert "verified: 10 events, 5 rows" in result.output


def test_a_copied_trail_is_chained_in_its_new_store(
    trail: tuple[str, list[int]], tmp_path: Path
) -> None:
    """copy writes through the target's store: the copy has a chain of its own."""
    target, ids = trail
    copied = tmp_path / "copy.db"
    assert query.copy(target, copied).inserted == len(ids)
    verified = query.verify(copied)
    assert verified.ok, verified.problems
    assert verified.rows == len(ids)


def test_a_big_trail_is_shared_out_to_processes_with_the_same_findings(
    repo: GenerationLogRepository,
    target: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From PARALLEL_FROM events and rows verify runs in worker processes, each over
    ranges in its own snapshot: the same problems, counts and checkpoint verdicts."""
    ids = _trail(repo, 30)
    saved = query.checkpoint(target)
    _trail(repo, 2)
    execute(target, "UPDATE generation_logs SET tokens_total = 3 WHERE id = ?", (ids[4],))
    execute(target, "DELETE FROM generation_logs WHERE id = ?", (ids[20],))
    execute(target, f"DELETE FROM {EVENTS} WHERE seq = 30")
    one = query.verify(target, checkpoint=saved)
    monkeypatch.setattr(_verify, "PARALLEL_FROM", 10)
    seen: list[tuple[int, int]] = []
    shared = query.verify(
        target, checkpoint=saved, workers=3, progress=lambda d, t: seen.append((d, t))
    )
    assert [(p.kind, p.seq, p.log_id) for p in shared.problems] == [
        (p.kind, p.seq, p.log_id) for p in one.problems
    ]
    assert {p.kind for p in one.problems} == {
        "missing_events",
        "event",
        "row_changed",
        "row_deleted",
    }
    assert (shared.events, shared.rows, shared.head) == (one.events, one.rows, one.head)
    assert len(seen) == 6
    assert seen[-1][0] == seen[-1][1]


def test_a_verify_worker_reads_its_share_on_stdin_and_answers_on_stdout(
    trail: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's side of the protocol, in this process: one share in, its result out."""
    import io

    from audited_openai._verify import Part

    target, ids = trail
    execute(target, "UPDATE generation_logs SET tokens_total = 2 WHERE id = ?", (ids[1],))
    order = {
        "target": target,
        "part": {"seqs": [1, 10], "ids": [1, ids[-1]], "head": 10, "checkpoint_seq": 4},
    }
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(order)))
    monkeypatch.setattr(sys, "stdout", out)
    _verify.part_main()
    answer = json.loads(out.getvalue())
    assert answer["found"]["events"] == 10
    assert [p["log_id"] for p in answer["found"]["problems"]] == [ids[1]]
    assert answer["at"] is not None
    assert Part((1, 10), (1, ids[-1]), 10).size == 10 + ids[-1]


# -- the newest rows and events: the likeliest target of a cover-up ---------------------------


@pytest.fixture(params=["one snapshot", "worker processes"])
def verify_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """verify in one snapshot, or shared out to worker processes (a big trail's way)."""
    if request.param == "one snapshot":
        return {}
    monkeypatch.setattr(_verify, "PARALLEL_FROM", 1)
    return {"workers": 3}


@pytest.mark.parametrize("newest", [1, 2])
def test_the_newest_rows_deleted_with_plain_sql_are_caught(
    trail: tuple[str, list[int]], verify_mode: dict[str, Any], newest: int
) -> None:
    """Deleting the newest row(s) lowers the highest row id: their events are still
    checked, so each is a row deleted without an erase event."""
    target, ids = trail
    execute(target, f"DELETE FROM generation_logs WHERE id > {ids[-1 - newest]}")
    verified = query.verify(target, **verify_mode)
    assert [(p.kind, p.log_id) for p in verified.problems] == [
        ("row_deleted", log_id) for log_id in ids[-newest:]
    ]
    assert (verified.events, verified.rows) == (10, 5 - newest)


def test_the_newest_row_deleted_is_caught_by_the_command(trail: tuple[str, list[int]]) -> None:
    target, ids = trail
    execute(target, "DELETE FROM generation_logs WHERE id = (SELECT max(id) FROM generation_logs)")
    result = CliRunner().invoke(main, ["--db", target, "verify"])
    assert result.exit_code == EXIT_UNVERIFIED, result.output
    assert f"log {ids[-1]} is gone without an erase event" in result.output


@pytest.mark.parametrize(
    ("column", "value"),
    [("state", "replace(state, 'success', 'failed')"), ("kind", "'link'"), ("at", "'2020'")],
)
def test_the_head_event_changed_is_caught(
    trail: tuple[str, list[int]], verify_mode: dict[str, Any], column: str, value: str
) -> None:
    """The newest event has no event after it to break: its own link is checked."""
    target, ids = trail
    execute(target, f"UPDATE {EVENTS} SET {column} = {value} WHERE seq = 10")
    verified = query.verify(target, **verify_mode)
    assert ("event", 10, ids[-1]) in [(p.kind, p.seq, p.log_id) for p in verified.problems]


def test_the_head_event_forged_with_its_row_is_caught(
    trail: tuple[str, list[int]], verify_mode: dict[str, Any]
) -> None:
    """The newest row changed and its event's state rewritten to match it: the row
    matches its event, but the event no longer follows from the one before."""
    target, ids = trail
    execute(target, "UPDATE generation_logs SET tokens_total = 99 WHERE id = ?", (ids[-1],))
    forged = state(fetch(target, f"SELECT {', '.join(CHAINED)} FROM generation_logs WHERE id = {ids[-1]}")[0])  # fmt: skip
    execute(target, f"UPDATE {EVENTS} SET state = ? WHERE seq = 10", (forged,))
    verified = query.verify(target, **verify_mode)
    assert [(p.kind, p.seq) for p in verified.problems] == [("event", 10)]
    assert not query.verify_log(target, ids[-1]).ok


def test_the_newest_row_with_its_events_deleted_is_caught_against_a_checkpoint(
    trail: tuple[str, list[int]], verify_mode: dict[str, Any], tmp_path: Path
) -> None:
    """Row and events gone together leave a chain that holds in itself (a hash chain
    cannot know its own end): the checkpoint taken before shows the tail was cut."""
    target, ids = trail
    saved = tmp_path / "cp.json"
    saved.write_text(json.dumps(query.checkpoint(target)))
    execute(target, f"DELETE FROM {EVENTS} WHERE log_id = {ids[-1]}")
    execute(target, f"DELETE FROM generation_logs WHERE id = {ids[-1]}")
    assert query.verify(target, **verify_mode).ok
    verified = query.verify(target, checkpoint=saved, **verify_mode)
    assert _kinds(verified) == ["truncated"]
    assert "the trail has 8 events" in verified.problems[0].message


# -- what the chain's mutants showed untested ---------------------------------------------------

# A checkpoint as a file holds it, and the bytes its signature covers: the checkpoint
# without "signature" as JSON with sorted keys and no spaces. Pinned, so that a
# checkpoint signed by one build (or an auditor's own tool) verifies with another.
PINNED_CHECKPOINT = {
    "format": "audited-openai-checkpoint/1",
    "trail": "audit.db",
    "events": 10,
    "hash": "ab" * 32,
    "at": "2026-12-01T12:00:00.000Z",
}
PINNED_SIGNED_BYTES = (
    b'{"at":"2026-12-01T12:00:00.000Z","events":10,"format":"audited-openai-checkpoint/1",'
    b'"hash":"' + b"ab" * 32 + b'","trail":"audit.db"}'
)
# Ed25519 signatures are deterministic: this key (the seed 0, 1, ..., 31) always gives it.
PINNED_SIGNATURE = (
    "fpX9vHyNLhnPCSsEy917Cm/6tPD5Zjlith/fZIRd+eFoJz9dr3+gOTwMAuuFIcXW0E7ccWdKKnbWqLKvi6qdCw=="
)


def test_a_checkpoint_signs_its_canonical_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audited_openai import _checkpoint

    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    key.public_key().verify(base64.b64decode(PINNED_SIGNATURE), PINNED_SIGNED_BYTES)
    monkeypatch.setattr(_checkpoint, "format_ts", lambda _moment: PINNED_CHECKPOINT["at"])
    made = _checkpoint.make_checkpoint("audit.db", 10, "ab" * 32, private)
    assert made == {**PINNED_CHECKPOINT, "signature": PINNED_SIGNATURE}
    assert _checkpoint.signature_holds({**PINNED_CHECKPOINT, "signature": PINNED_SIGNATURE}, public)


def test_a_signature_with_characters_base64_has_not_is_forged(tmp_path: Path) -> None:
    """A lenient decoder would drop them and let the signature hold."""
    from audited_openai import _checkpoint

    private, public = _keys(tmp_path, "k")
    signed = _checkpoint.make_checkpoint("audit.db", 3, "cd" * 32, private)
    assert _checkpoint.signature_holds(signed, public)
    for spoilt in (
        "!" + signed["signature"],
        signed["signature"][:20] + "*" + signed["signature"][20:],
    ):
        assert not _checkpoint.signature_holds({**signed, "signature": spoilt}, public)


def test_rows_without_a_definitie_deleted_beside_the_host_table_are_deleted_rows(
    repo: GenerationLogRepository, target: str
) -> None:
    """With the host's definities table there, a row linked to no definitie that went
    without an erase event is a deletion (nothing to have gone with); two rows that went
    with their deleted definitie are counted as two."""
    conn = host(target, (1, "getuige"))
    assert repo.refresh_host_objects()  # the table came after the store was opened
    lone = repo.create_pending_log(make_context())
    linked = [repo.create_pending_log(make_context(definitie_id=1)) for _ in range(2)]
    repo.flush()
    execute(target, "DELETE FROM generation_logs WHERE id = ?", (lone,))
    conn.execute("DELETE FROM definities WHERE id = 1")
    conn.close()
    verified = query.verify(target)
    assert [(p.kind, p.log_id) for p in verified.problems] == [("row_deleted", lone)]
    assert verified.host_erased == len(linked)
    assert verified.notes() == [
        "2 rows went with their definitie, deleted by the host app (not chained: no erase event)"
    ]


def test_the_summary_names_the_head_and_a_valid_signature(
    trail: tuple[str, list[int]], tmp_path: Path
) -> None:
    target, _ = trail
    private, public = _keys(tmp_path, "k")
    verified = query.verify(
        target, checkpoint=query.checkpoint(target, key=private), public_key=public
    )
    assert verified.summary() == (
        f"verified: 10 events, 5 rows, head {verified.head[:16]}; "
        "the checkpoint of 10 events holds (signature valid)"
    )


def test_one_row_checked_says_exactly_what_it_found(
    repo: GenerationLogRepository, target: str
) -> None:
    """verify_log (the details view's check): the chain's length and head as verify
    has them; the very first event links to the genesis; each problem names its kind,
    event and row in its words; a row erased or gone with its definitie is no problem."""
    from audited_openai._chain import GENESIS

    empty = query.verify_log(target, 1)
    assert (empty.ok, empty.events, empty.head, empty.rows) == (True, 0, GENESIS, 0)
    first = repo.create_pending_log(make_context())  # one event: seq 1
    repo.flush()
    only = query.verify_log(target, first)
    assert (only.ok, only.rows, only.events) == (True, 1, 1)
    ids = [first, *_trail(repo, 2)]
    whole = query.verify(target)
    one = query.verify_log(target, ids[1])
    assert (one.ok, one.rows, one.events, one.head) == (True, 1, whole.events, whole.head)

    execute(target, f"DELETE FROM {EVENTS} WHERE seq = 2")  # the event before log 2's last
    (missing,) = query.verify_log(target, ids[1]).problems
    assert (missing.kind, missing.seq, missing.log_id) == ("event", 3, ids[1])
    assert missing.message == f"event 3 (log {ids[1]}) does not follow from the event before it"

    execute(
        target,
        "INSERT INTO generation_logs (prompt_full_text, model_name) VALUES ('x', 'gpt-4')",
    )
    (extra,) = [int(str(r["id"])) for r in rows(target) if r["prompt_full_text"] == "x"]
    inserted = query.verify_log(target, extra)
    assert inserted.rows == 1
    assert [(p.kind, p.message, p.log_id) for p in inserted.problems] == [
        ("row_inserted", f"log {extra} has no event", extra)
    ]


def test_one_row_gone_with_its_definitie_is_no_problem(
    repo: GenerationLogRepository, target: str
) -> None:
    """A row the host's delete of its definitie took (no erase event) is counted so, as
    verify counts it; a row deleted behind the library's back is a problem."""
    conn = host(target, (4, "getuige"), (5, "verdachte"))
    assert repo.refresh_host_objects()
    gone = repo.create_pending_log(make_context(definitie_id=4))
    deleted = repo.create_pending_log(make_context(definitie_id=5))  # its definitie stays
    repo.flush()
    conn.execute("DELETE FROM definities WHERE id = 4")
    conn.close()
    execute(target, "DELETE FROM generation_logs WHERE id = ?", (deleted,))
    went = query.verify_log(target, gone)
    assert (went.ok, went.host_erased, went.erased) == (True, 1, 0)
    assert _kinds(query.verify_log(target, deleted)) == ["row_deleted"]


def test_a_later_column_changed_is_caught_and_named(
    repo: GenerationLogRepository, target: str
) -> None:
    """replay_of (added after the chain began, in a state only when set) changed, set or
    cleared behind the library's back: each is a changed row, naming the column."""
    original = repo.create_pending_log(make_context())
    replay = repo.create_pending_log(make_context(replay_of=original))
    plain = repo.create_pending_log(make_context())
    repo.flush()
    assert query.verify(target).ok
    execute(target, "UPDATE generation_logs SET replay_of = 99 WHERE id = ?", (replay,))
    execute(target, "UPDATE generation_logs SET replay_of = ? WHERE id = ?", (original, plain))
    verified = query.verify(target)
    assert [(p.kind, p.log_id) for p in verified.problems] == [
        ("row_changed", replay),
        ("row_changed", plain),
    ]
    assert all("replay_of no longer match" in p.message for p in verified.problems)
    execute(target, "UPDATE generation_logs SET replay_of = NULL WHERE id = ?", (replay,))
    assert "replay_of" in query.verify_log(target, replay).problems[0].message


def test_verify_workers_run_the_code_that_started_them(
    trail: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker process imports the audited_openai of the process that started it, even
    where the environment would find another one first."""
    import audited_openai

    decoy = tmp_path / "decoy" / "audited_openai"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the wrong audited_openai')\n")
    monkeypatch.setenv("PYTHONPATH", str(decoy.parent))
    monkeypatch.setattr(_verify, "PARALLEL_FROM", 1)
    target, _ = trail
    assert query.verify(target, workers=2).ok
    assert Path(audited_openai.__file__).resolve().parent != decoy
