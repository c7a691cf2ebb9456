"""Checkpoints of the chain's head: kept away from the database, signed with Ed25519.

A checkpoint is ``{"format", "trail", "events", "hash", "at"}`` and, when signed, a
``signature`` over the rest as JSON with sorted keys and no spaces (``_signed_part``):
``verify`` against it shows a chain rewritten up to it or cut off after it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audited_openai import _sql
from audited_openai._chain import GENESIS
from audited_openai._clock import format_ts, utc_now
from audited_openai._errors import InvalidLogError

if TYPE_CHECKING:
    from audited_openai._store import Store

CHECKPOINT_FORMAT = "audited-openai-checkpoint/1"


def _signed_part(checkpoint: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in checkpoint.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: PLC0415
    except ImportError as exc:
        raise InvalidLogError(
            "signing checkpoints needs the cryptography package: "
            "pip install 'audited-openai[signing]'"
        ) from exc
    return serialization, ed25519


def _key(path: str | os.PathLike[str], kind: str) -> Any:
    serialization, ed25519 = _crypto()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidLogError(f"cannot read the {kind} key {path}: {exc.strerror}") from exc
    try:
        if kind == "private":
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InvalidLogError(f"{path} is not a PEM {kind} key: {exc}") from exc
    wanted = ed25519.Ed25519PrivateKey if kind == "private" else ed25519.Ed25519PublicKey
    if not isinstance(key, wanted):
        raise InvalidLogError(f"{path} is not an Ed25519 {kind} key")
    return key


def generate_keys(private: str | os.PathLike[str]) -> Path:
    """Write a new Ed25519 key pair: ``private`` (PEM, mode 0600) and ``<private>.pub``."""
    serialization, ed25519 = _crypto()
    private, public = Path(private), Path(f"{private}.pub")
    for path in (private, public):
        if path.exists():
            raise InvalidLogError(f"{path} exists: keys are never overwritten")
    key = ed25519.Ed25519PrivateKey.generate()
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        with os.fdopen(os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(data)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    except OSError as exc:
        raise InvalidLogError(f"cannot write the key {private}: {exc.strerror}") from exc
    return public


def key_of(path: str | os.PathLike[str], kind: str) -> None:
    """Refuse (InvalidLogError) a file that is no Ed25519 PEM key of this ``kind``."""
    _key(path, kind)


def make_checkpoint(
    trail: str,
    events: int,
    head: str,
    key_file: str | os.PathLike[str] | None = None,
    *,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint of a chain's head, signed with the Ed25519 key in ``key_file``.

    ``extra`` fields (a dossier's Merkle root and definitie) are signed with the rest.
    """
    checkpoint: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "trail": trail,
        "events": events,
        "hash": head,
        "at": format_ts(utc_now()),
        **(extra or {}),
    }
    if key_file is not None:
        signature = _key(key_file, "private").sign(_signed_part(checkpoint))
        checkpoint["signature"] = base64.b64encode(signature).decode()
    return checkpoint


def read_checkpoint(source: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    """A checkpoint from a file (or as given), checked for its fields."""
    if isinstance(source, dict):
        found = source
    else:
        try:
            found = json.loads(Path(source).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidLogError(f"cannot read the checkpoint {source}: {exc.strerror}") from exc
        except ValueError as exc:
            raise InvalidLogError(f"{source} is not a checkpoint (not JSON: {exc})") from exc
    if (
        not isinstance(found, dict)
        or found.get("format") != CHECKPOINT_FORMAT
        or isinstance(found.get("events"), bool)
        or not isinstance(found.get("events"), int)
        or not isinstance(found.get("hash"), str)
    ):
        raise InvalidLogError(f"{source} is not an {CHECKPOINT_FORMAT} checkpoint")
    return found


def signature_holds(checkpoint: dict[str, Any], public_key_file: str | os.PathLike[str]) -> bool:
    """Whether the checkpoint carries a valid signature by the key in ``public_key_file``."""
    key = _key(public_key_file, "public")
    try:
        signature = base64.b64decode(checkpoint.get("signature") or "", validate=True)
        key.verify(signature, _signed_part(checkpoint))
    except Exception:  # any failure (bad base64, a bad signature) is a forgery
        return False
    return bool(signature)


def of_store(store: Store, key: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The checkpoint of a store's chain as it is now (signed with ``key``, if given)."""
    with store.snapshot() as snapshot:
        head = next(snapshot.rows(_sql.EVENT_HEAD), None)
    events, hashed = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    return make_checkpoint(store.location, events, hashed, key)
