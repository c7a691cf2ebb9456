"""The dossier of a definitie: built from the trail, checked anywhere with no database.

The Merkle tree against RFC 9162's test vectors and brute force; then, on both
backends, a dossier of a definitie with several attempts and reviews that holds, and
one altered in each of its parts (summary, row, review, event, proof, checkpoint) that
does not, one line per problem; and a dossier that still holds after other definities
were erased or retained out.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from audited_openai import (
    GenerationLogRepository,
    InvalidLogError,
    _merkle,
    _repository,
    cli,
    dossier,
)
from audited_openai._chain import link_hash
from audited_openai._clock import utc_now
from tests.conftest import fetch, make_context

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

# RFC 6962's reference vectors (certificate-transparency's merkle tree tests): the
# leaves' inputs, and the root of the first n of them.
CT_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_the_tree_is_rfc_6962s() -> None:
    leaves = [hashlib.sha256(b"\x00" + bytes.fromhex(x)).digest() for x in CT_INPUTS]
    assert [_merkle.root_of(leaves[:n]).hex() for n in range(1, 9)] == CT_ROOTS


def test_every_proof_leads_to_the_root_and_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sizes 1 to 40 with blocks of 4: kept block roots give the same tree."""
    monkeypatch.setattr(_merkle, "BLOCK", 4)
    for size in range(1, 41):
        leaves = [hashlib.sha256(i.to_bytes(2, "big")).digest() for i in range(size)]
        tree = _merkle.Tree(size, lambda lo, hi, leaves=leaves: leaves[lo:hi])
        root = tree.root()
        assert root == _merkle.root_of(leaves)
        assert len(tree.computed) == size // 4
        kept = _merkle.Tree(size, lambda lo, hi, leaves=leaves: leaves[lo:hi], dict(tree.blocks))
        for index in range(size):
            proof = kept.proof(index)
            assert _merkle.root_from_proof(index, size, leaves[index], proof) == root
            if proof:
                forged = [bytes(32), *proof[1:]]
                assert _merkle.root_from_proof(index, size, leaves[index], forged) != root
        assert _merkle.root_from_proof(size, size, leaves[0], []) is None


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "signing.pem"
    return private, dossier.generate_keys(private)


def a_trail(repo: GenerationLogRepository) -> None:
    """Definitie 7: a failed attempt, its retry, a replay and two reviews; others around."""
    for definitie_id in (5, 7, 7, 8):
        ctx = make_context(definitie_id=definitie_id)
        ctx.prompt.full_text += f" (definitie {definitie_id})"
        repo.insert_log(ctx)
    repo.insert_log(make_context(definitie_id=7, replay_of=2))
    repo.record_review(7, "rejected", reviewer="jurist-7", note="te ruim")
    repo.record_review(7, "edited", reviewer="jurist-8", edited_text="Een verdachte is ...")
    repo.record_review(8, "approved", reviewer="jurist-7")


def test_a_dossier_holds_offline(
    repo: GenerationLogRepository, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    a_trail(repo)
    out = tmp_path / "dossier.zip"
    made = dossier.build(repo, 7, out, keys[0])
    assert (made["rows"], made["reviews"], made["trail_events"]) == (3, 2, 8)
    assert made["events"] == 5  # three rows inserted, two reviews
    repo.close()
    problems, facts = dossier.check(out, keys[1])
    assert problems == []
    assert (facts["definitie_id"], facts["rows"], facts["reviews"]) == (7, 3, 2)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["checkpoint.json", "dossier.json", "samenvatting.md"]
        said = archive.read("samenvatting.md").decode()
    assert said.startswith("# Dossier van definitie 7\n")
    assert "**afgewezen** door jurist-7" in said
    assert "**bewerkt** door jurist-8" in said
    assert "Een verdachte is ..." in said
    assert "herhaling van log 2" in said
    assert "(definitie 7)" in said
    assert "(definitie 5)" not in said
    assert "(definitie 8)" not in said


def _altered(path: Path, change: Callable[[dict[str, Any], dict[str, str]], None]) -> Path:
    """A copy of the dossier with ``change`` applied to its manifest and its files."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name).decode() for name in archive.namelist()}
    manifest = json.loads(files["dossier.json"])
    change(manifest, files)
    files["dossier.json"] = json.dumps(manifest)
    altered = path.with_name("altered.zip")
    with zipfile.ZipFile(altered, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return altered


def _set(*keys: Any, value: Any) -> Callable[[dict[str, Any], dict[str, str]], None]:
    def change(manifest: dict[str, Any], _files: dict[str, str]) -> None:
        where = manifest
        for key in keys[:-1]:
            where = where[key]
        where[keys[-1]] = value

    return change


def _rehashed(manifest: dict[str, Any], _files: dict[str, str]) -> None:
    """An event changed and its hash made again: only the signed tree can tell."""
    event = manifest["events"][0]
    event["state"] = event["state"].replace('"pending"', '"failed"', 1)
    fields = tuple(event[k] for k in dossier.EVENT_FIELDS[:7])
    event["hash"] = link_hash(event["prev"], fields)


ALTERATIONS = {
    "summary": (
        lambda _m, files: files.update(
            {"samenvatting.md": files["samenvatting.md"].replace("afgewezen", "goedgekeurd")}
        ),
        ["samenvatting.md does not say what the rows and reviews say (it was changed)"],
    ),
    "row": (
        _set("rows", 0, "response_content", value="Een andere definitie."),
        [
            "log 2: response_content no longer match event 2",
            "samenvatting.md does not say what the rows and reviews say (it was changed)",
        ],
    ),
    "review": (
        _set("reviews", 0, "verdict", value="approved"),
        [
            "review 1 no longer matches event 6",
            "samenvatting.md does not say what the rows and reviews say (it was changed)",
        ],
    ),
    "event": (
        _set("events", 0, "at", value="2020-01-01T00:00:00.000Z"),
        ["event 2 (insert) does not match its hash: changed"],
    ),
    "event and hash": (
        _rehashed,
        [
            "event 2 (insert) is not in the signed chain of 8 events",
            "log 2: generation_status no longer match event 2",
        ],
    ),
    "proof": (
        lambda m, _f: m["events"][1]["proof"].__setitem__(0, "00" * 32),
        ["event 3 (insert) is not in the signed chain of 8 events"],
    ),
    "checkpoint": (
        _set("checkpoint", "at", value="2020-01-01T00:00:00.000Z"),
        [
            "the checkpoint's signature does not hold (changed, or signed by another key)",
            "checkpoint.json differs from the dossier's checkpoint",
            "samenvatting.md does not say what the rows and reviews say (it was changed)",
        ],
    ),
    "dropped event": (
        lambda m, _f: m["events"].pop(),
        [
            "review 2 has no event in the dossier",
            "samenvatting.md does not say what the rows and reviews say (it was changed)",
        ],
    ),
}


@pytest.mark.parametrize("part", list(ALTERATIONS))
def test_an_altered_dossier_fails_one_line_per_problem(
    repo: GenerationLogRepository, keys: tuple[Path, Path], tmp_path: Path, part: str
) -> None:
    a_trail(repo)
    out = tmp_path / "dossier.zip"
    dossier.build(repo, 7, out, keys[0])
    change, expected = ALTERATIONS[part]
    problems, _ = dossier.check(_altered(out, change), keys[1])
    assert problems == expected
    result = CliRunner().invoke(
        cli.main, ["check-dossier", str(tmp_path / "altered.zip"), "--public-key", str(keys[1])]
    )
    assert result.exit_code == 5
    lines = result.output.strip().splitlines()
    assert lines[:-1] == [f"problem: {p}" for p in expected]
    assert lines[-1].startswith(f"NOT verified: {len(expected)} problem")


def test_another_key_or_no_dossier_is_caught(
    repo: GenerationLogRepository, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    a_trail(repo)
    out = tmp_path / "dossier.zip"
    dossier.build(repo, 7, out, keys[0])
    other = dossier.generate_keys(tmp_path / "other.pem")
    assert dossier.check(out, other)[0] == [
        "the checkpoint's signature does not hold (changed, or signed by another key)"
    ]
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert dossier.check(junk, keys[1])[0][0].startswith("not a dossier: ")
    with pytest.raises(InvalidLogError, match="is not a PEM public key"):
        dossier.check(out, keys[0].with_name("dossier.zip"))
    with pytest.raises(InvalidLogError, match="no logs for definitie 99"):
        dossier.build(repo, 99, tmp_path / "none.zip", keys[0])
    with pytest.raises(
        InvalidLogError, match=r"is not an Ed25519 private key|is not a PEM private key"
    ):
        dossier.build(repo, 7, tmp_path / "none.zip", keys[1])
    assert not (tmp_path / "none.zip").exists()
    with pytest.raises(InvalidLogError, match="keys are never overwritten"):
        dossier.generate_keys(keys[0])


def test_it_holds_after_other_definities_are_erased_or_retained_out(
    repo: GenerationLogRepository,
    keys: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a_trail(repo)
    before = tmp_path / "before.zip"
    dossier.build(repo, 7, before, keys[0])
    old = utc_now() - timedelta(days=800)
    repo.insert_log(make_context(definitie_id=9, logged_at=old))
    with monkeypatch.context() as patched:
        patched.setattr(_repository, "utc_now", lambda: old)
        repo.record_review(9, "approved", reviewer="jurist-7")
    repo.erase_definitie(5)
    repo.erase_definitie(8)
    repo.set_retention("2y")
    assert repo.retain()["rows"] == 1
    after = tmp_path / "after.zip"
    made = dossier.build(repo, 7, after, keys[0])
    assert made["rows"] == 3
    for path in (before, after):
        assert dossier.check(path, keys[1])[0] == [], path
    assert repo.verify().ok


def test_the_commands_build_and_check_and_keep_block_roots(
    repo: GenerationLogRepository, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_merkle, "BLOCK", 2)
    a_trail(repo)
    repo.close()
    runner = CliRunner()
    key = tmp_path / "k.pem"
    result = runner.invoke(cli.main, ["keygen", "-o", str(key)])
    assert result.exit_code == 0, result.output
    assert key.stat().st_mode & 0o777 == 0o600
    out = tmp_path / "d.zip"
    result = runner.invoke(
        cli.main, ["--db", target, "dossier", "--definitie", "7", "-o", str(out), "--key", str(key)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("dossier of definitie 7 written to ")
    assert "3 rows, 2 reviews, 5 events proven in a chain of 8" in result.output
    assert fetch(target, "SELECT count(*) FROM generation_log_merkle") == [(4,)]
    again = runner.invoke(
        cli.main, ["--db", target, "dossier", "--definitie", "7", "-o", str(out), "--key", str(key)]
    )
    assert again.exit_code == 0
    result = runner.invoke(cli.main, ["check-dossier", str(out), "--public-key", f"{key}.pub"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "dossier holds: definitie 7, 3 rows, 2 reviews, 5 events in a chain of 8 signed at "
    )
    result = runner.invoke(
        cli.main, ["check-dossier", str(out), "--public-key", f"{key}.pub", "--json"]
    )
    assert json.loads(result.output)["ok"] is True
    result = runner.invoke(
        cli.main, ["--db", target, "dossier", "--definitie", "4", "-o", str(out), "--key", str(key)]
    )
    assert (result.exit_code, result.output.strip()) == (
        2,
        "error: no logs for definitie 4: nothing to put in a dossier",
    )
