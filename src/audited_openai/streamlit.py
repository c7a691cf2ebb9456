"""Streamlit views of the audit trail (``pip install 'audited-openai[streamlit]'``).

``show_generation_details(repo, definitie_id)`` is the spec's "Generatie Details"
expander; ``token_dashboard(repo)`` shows tokens per day, the failure rate per
template, the most expensive generations and the recent failures. Both only read.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from audited_openai import _chain, query

if TYPE_CHECKING:
    from audited_openai._repository import GenerationLogRepository

__all__ = ["NO_LOG_MESSAGE", "show_generation_details", "token_dashboard"]

NO_LOG_MESSAGE = "Geen generatie metadata beschikbaar (geïmporteerde of legacy definitie)"


def _st() -> Any:
    try:
        import streamlit as st  # noqa: PLC0415 - an optional extra
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "audited_openai.streamlit needs Streamlit: pip install 'audited-openai[streamlit]'"
        ) from exc
    return st


def _value(value: object, unit: str = "") -> str:
    return "—" if value is None else f"{value}{unit}"


def show_generation_details(
    repo: GenerationLogRepository, definitie_id: int, *, expanded: bool = False
) -> None:
    """The "Generatie Details" of a definitie: model, parameters, tokens, timing, prompt."""
    st = _st()
    log = repo.get_by_definitie_id(definitie_id)
    if log is None:
        st.info(NO_LOG_MESSAGE)
        return
    params, response, error = log.prompt.model_params, log.response, log.error
    with st.expander("📊 Generatie Details", expanded=expanded):
        col1, col2, col3 = st.columns(3)
        col1.metric("Model", params.name)
        col1.metric(
            "Temperature", _value(None if params.temperature is None else float(params.temperature))
        )
        col2.metric("Tokens Gebruikt", _value(response.tokens_total if response else None))
        col2.metric("Prompt Tokens", _value(response.tokens_prompt if response else None))
        col2.metric("Completion Tokens", _value(response.tokens_completion if response else None))
        duration = (response.duration_ms if response else None) or (
            error.duration_ms if error else None
        )
        col3.metric("Generatietijd", _value(duration, "ms"))
        col3.metric("Template Versie", _value(log.prompt.template_version))
        st.caption(
            f"Log {log.id} · status {log.status} · poging {log.attempt} · "
            f"template {_value(log.prompt.template_name)} · modules "
            f"{', '.join(log.prompt.modules_used or []) or '—'} · {log.to_dict()['logged_at']}"
        )
        if error is not None:
            st.error(f"{error.error_type}: {error.message}")
        _chain_status(st, repo, log.id)
        if st.checkbox("Toon Volledige Prompt", key=f"audited-prompt-{definitie_id}"):
            st.code(log.prompt.full_text, language="markdown")


FULL_CHECK_EVENTS = 50_000  # up to this many events the whole chain is checked at once


def _chain_status(st: Any, repo: GenerationLogRepository, log_id: int | None) -> None:
    """One line on the tamper-evident chain: this row, and the whole chain when quick."""
    if log_id is None or repo.store.schema_version() < _chain.SINCE_VERSION:
        return
    row = query.verify_log(repo, log_id)
    if not row.ok:
        st.error("Keten: " + "; ".join(problem.message for problem in row.problems))
        return
    if row.events <= FULL_CHECK_EVENTS or st.button(
        "Controleer de hele keten", key=f"audited-chain-{log_id}"
    ):
        whole = _verified(repo, row.head)
        if whole.ok:
            st.success(f"Keten geverifieerd tot gebeurtenis {whole.events}")
        else:
            st.error(
                f"Keten niet in orde: {len(whole.problems)} probleem/problemen, "
                f"de eerste: {whole.problems[0].message} (audited-openai verify)"
            )
        return
    st.caption(
        f"Keten: log {log_id} klopt met zijn laatste gebeurtenis (van {row.events}); "
        "de hele keten: audited-openai verify"
    )


def _verified(repo: GenerationLogRepository, head: str) -> query.Verification:
    """The whole chain's verification, remembered for a minute while the head stays."""
    key = (repo.path, head)
    found = _VERIFIED.get(key)
    if found is None or time.monotonic() - found[0] > VERIFIED_FOR_S:
        _VERIFIED.clear()
        found = _VERIFIED[key] = (time.monotonic(), query.verify(repo))
    return found[1]


VERIFIED_FOR_S = 60.0
_VERIFIED: dict[tuple[str, str], tuple[float, query.Verification]] = {}


def token_dashboard(repo: GenerationLogRepository, *, days: int = 30) -> None:
    """Tokens per day, failure rate per template, most expensive, recent failures."""
    st = _st()
    data = query.stats(repo)
    st.subheader("Tokens per dag")
    usage = list(reversed(data["token_usage_by_day"][:days]))
    if usage:
        st.bar_chart(
            {"dag": [r["day"] for r in usage], "tokens": [r["tokens_total"] for r in usage]},
            x="dag",
            y="tokens",
        )
    else:
        st.info("Nog geen geslaagde generaties.")
    st.subheader("Foutpercentage per template")
    st.dataframe(data["failure_rate_by_template"], hide_index=True)
    st.subheader("Duurste generaties")
    st.dataframe(query.most_expensive(repo, 10), hide_index=True)
    st.subheader("Recente fouten")
    failures = [
        {
            "id": log.id,
            "tijd": log.to_dict()["logged_at"],
            "status": log.status,
            "fout": log.error.error_type if log.error else None,
            "melding": log.error.message if log.error else None,
        }
        for status in ("failed", "timeout")
        for log in query.history(repo, status=status, limit=10)
    ]
    if failures:
        st.dataframe(
            sorted(failures, key=lambda r: r["id"] or 0, reverse=True)[:10], hide_index=True
        )
    else:
        st.success("Geen fouten.")
