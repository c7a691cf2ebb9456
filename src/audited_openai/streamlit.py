"""Streamlit views of the audit trail (``pip install 'audited-openai[streamlit]'``).

- ``show_generation_details(repo, definitie_id)``: the spec's "Generatie Details" of a
  definitie: the generation that produced it, every stored field, the chain status.
- ``logboek(repo)``: every row, newest first, paged and filtered as in the CLI; the row
  in ``?log=ID`` opened whole (:func:`show_log`).
- ``show_log(repo, log_id)``: one row whole, the other attempts of its call side by
  side, its definitie (``?definitie=ID``) or "geen definitie", a diff with another row.
- ``token_dashboard(repo)``: tokens per day, failure rate per template, the most
  expensive generations and the recent failures.
- ``vergelijk(repo)``: two template versions (templates, models) compared: the
  table of ``query.compare``, its verdicts in Dutch, the failure rates with their
  intervals and the distributions of duration and cost.
- ``status_panel(repo)``: the trail's health (``query.status``): definities without a
  log, rows pending too long, failures and durations, size and room, the last checks,
  and every problem ``audited-openai status --check`` would exit 6 on.

All only read. Labels are Dutch, numbers in the nl-NL format (14.000; 38,5 %), times
in the viewer's time zone with the zone named. Deep links are query parameters:
``?log=ID`` and ``?definitie=ID``; the views keep them in step with what they show.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from audited_openai import _chain, query
from audited_openai._errors import AuditedOpenAIError, InvalidLogError, LogNotFoundError
from audited_openai._models import Cost, ResponseMetadata

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence
    from datetime import tzinfo
    from decimal import Decimal

    from audited_openai._models import GenerationContext
    from audited_openai._repository import GenerationLogRepository
    from audited_openai._review import Review

__all__ = [
    "NO_LOG_MESSAGE",
    "STATUS_LABELS",
    "VERDICT_LABELS",
    "beoordeel",
    "dossier_button",
    "local_time",
    "logboek",
    "nl_date",
    "nl_duration",
    "nl_money",
    "nl_number",
    "nl_percent",
    "show_generation_details",
    "show_log",
    "status_panel",
    "token_dashboard",
    "vergelijk",
]

NO_LOG_MESSAGE = "Geen generatie metadata beschikbaar (geïmporteerde of legacy definitie)"
STATUS_LABELS = {
    "success": "geslaagd",
    "failed": "mislukt",
    "timeout": "time-out",
    "pending": "in behandeling",
}
PAGE_SIZE = 25
VERDICT_LABELS = {"approved": "goedgekeurd", "rejected": "afgewezen", "edited": "bewerkt"}
REVIEWED_LABELS = {"alle": None, "beoordeeld": True, "nog niet beoordeeld": False}


def _st() -> Any:
    try:
        import streamlit as st  # noqa: PLC0415 - an optional extra
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "audited_openai.streamlit needs Streamlit: pip install 'audited-openai[streamlit]'"
        ) from exc
    return st


# -- nl-NL formats ------------------------------------------------------------------------


def nl_number(value: float | None, decimals: int = 0, unit: str = "") -> str:
    """``14000`` -> ``"14.000"``, ``0.3`` with 1 decimal -> ``"0,3"``; ``None`` -> ``"—"``."""
    if value is None:
        return "—"
    text = f"{value:,.{decimals}f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{text} {unit}" if unit else text


def nl_percent(value: float | None) -> str:
    """``38.4615`` -> ``"38,5 %"``."""
    return "—" if value is None else nl_number(value, 1, "%")


CURRENCY_SYMBOLS = {"EUR": "€", "USD": "US$", "GBP": "£"}


def nl_money(amount: float | Decimal | None, currency: str | None) -> str:
    """``0.000356`` USD -> ``"US$ 0,000356"``, ``1234.5`` EUR -> ``"€ 1.234,50"``.

    Two decimals from 1 up; below that three significant digits (a call costs fractions
    of a cent), trailing zeros dropped down to two decimals. ``None`` -> ``"—"``.
    """
    if amount is None:
        return "—"
    value = float(amount)
    decimals = 2
    if 0 < abs(value) < 1:
        decimals = max(2, 2 - math.floor(math.log10(abs(value))))
    text = nl_number(value, decimals)
    if decimals > 2:  # noqa: PLR2004 - the cents stay
        text = text.rstrip("0")
        text += "0" * max(0, 2 - len(text.partition(",")[2]))
    symbol = CURRENCY_SYMBOLS.get(currency or "", currency or "")
    return f"{symbol} {text}".strip()


def _cost(cost: Cost | None) -> str:
    """A row's cost in Dutch: the amount, unknown (and why it can be), or not priced."""
    if cost is None:
        return "niet berekend (geen geslaagde generatie, of van vóór schema 11)"
    if cost.amount is None:
        return f"onbekend: geen prijs voor het model of geen gebruik (prijzen {cost.price_version})"
    return f"{nl_money(cost.amount, cost.currency)} (prijzen {cost.price_version})"


def _decimal(value: object) -> str:
    """A stored parameter (temperature 0.3) as written in Dutch: ``"0,3"``."""
    return "—" if value is None else repr(float(value)).replace(".", ",")  # type: ignore[arg-type]


def _zone() -> tzinfo | None:
    """The browser's time zone when Streamlit knows it, else the server's."""
    with contextlib.suppress(Exception):  # outside a session, or an unknown zone name
        name = _st().context.timezone
        if name:
            return ZoneInfo(name)
    return None


MONTHS = ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec")


def nl_date(day: date | None, *, year: bool = True) -> str:
    """``date(2026, 12, 1)`` -> ``"1 dec 2026"`` (``"1 dec"`` without the year)."""
    if day is None:
        return "—"
    text = f"{day.day} {MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if year else text


def nl_duration(ms: float | None) -> str:
    """``850`` -> ``"850 ms"``, ``1005`` -> ``"1,0 s"``, ``125000`` -> ``"2 min 5 s"``."""
    if ms is None:
        return "—"
    if ms < 1000:  # noqa: PLR2004 - a second
        return nl_number(ms, 0, "ms")
    if ms < 60_000:  # noqa: PLR2004 - a minute
        return nl_number(ms / 1000, 1, "s")
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{nl_number(minutes)} min {seconds} s"


def local_time(moment: datetime | None, zone: tzinfo | None = None) -> str:
    """``30-11-2026 06:31:02 CET``: the moment in ``zone`` (default local), zone named."""
    if moment is None:
        return "—"
    local = moment.astimezone(zone)
    return f"{local:%d-%m-%Y %H:%M:%S} {local.tzname() or format(local, '%z')}"


def _status(status: str) -> str:
    return STATUS_LABELS.get(status, status)


# -- deep links ---------------------------------------------------------------------------


# The Logboek's state in the URL: parameter -> the session key of its widget
URL_FILTERS = {
    "status": "logboek-status",
    "model": "logboek-model",
    "template": "logboek-template",
    "versie": "logboek-version",
    "door": "logboek-actor",
    "sessie": "logboek-session",
    "bij_definitie": "logboek-definitie",
    "beoordeling": "logboek-reviewed",
    "van": "logboek-since",
    "tot": "logboek-until",
    "zoek": "logboek-search",
}
_STATUS_IN_URL = {"alle": None, **{label: status for status, label in STATUS_LABELS.items()}}
_IN_URL = {
    "status": _STATUS_IN_URL,
    "beoordeling": {
        label: {None: None, True: "ja", False: "nee"}[value]
        for label, value in REVIEWED_LABELS.items()
    },
}  # a choice's label -> its value in the URL


def _go(**params: int | str) -> None:
    """Show another row or definitie: the URL says which, and the page follows.

    Opening a row keeps the Logboek's filters and page in the URL; anything else
    starts afresh.
    """
    st = _st()
    kept = {}
    if "log" in params:
        kept = {k: v for k, v in st.query_params.items() if k in URL_FILTERS or k == "na"}
    st.query_params.from_dict({**kept, **{key: str(value) for key, value in params.items()}})
    st.rerun()


def _url_value(param: str, shown: object) -> str | None:
    """A widget's value as the URL writes it (None: the default, left out)."""
    if param in _IN_URL:
        return _IN_URL[param].get(str(shown))
    return str(shown).strip() or None if shown is not None else None


def _filters_from_url(st: Any) -> None:
    """A new session takes the Logboek's filters from the URL (a reload, a shared link)."""
    for param, key in URL_FILTERS.items():
        raw = st.query_params.get(param)
        if raw is None or key in st.session_state:
            continue
        if param in _IN_URL:
            shown = next((label for label, value in _IN_URL[param].items() if value == raw), None)
            if shown is None:
                st.warning(f"'{raw}' in de link is geen waarde voor {param}; getoond: alle.")
                continue
            st.session_state[key] = shown
        else:
            st.session_state[key] = raw


def _filters_to_url(st: Any) -> None:
    """The URL follows the filters, so that a reload shows the same rows."""
    for param, key in URL_FILTERS.items():
        value = _url_value(param, st.session_state.get(key))
        if value is None:
            st.query_params.pop(param, None)
        elif st.query_params.get(param) != value:
            st.query_params[param] = value


def _param_id(st: Any, name: str, what: str) -> int | None:
    """The id in ``?name=``, or None when absent or bad (a bad one is named)."""
    raw = st.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    st.warning(f"'{raw}' in de link is geen {what}-id (een positief geheel getal).")
    return None


# -- one row, whole -----------------------------------------------------------------------


def _fields(log: GenerationContext, zone: tzinfo | None) -> list[dict[str, str]]:
    """Every stored column of a row, labelled in Dutch, as text."""
    params, response, error = log.prompt.model_params, log.response, log.error
    r = response or ResponseMetadata()  # every field None
    rows: list[tuple[str, object]] = [
        ("Log", log.id),
        ("Status", _status(log.status)),
        ("Definitie", log.definitie_id if log.definitie_id is not None else "geen definitie"),
        ("Aanroep (call_id)", log.call_id),
        ("Aangevraagd door (actor)", log.actor),
        ("Sessie", log.session),
        ("Poging", log.attempt),
        ("Eindpunt (endpoint)", log.endpoint),
        ("Gestreamd (stream)", "ja" if log.stream else "nee"),
        ("Herhaling van log (replay_of)", log.replay_of),
        ("Gelogd", local_time(log.logged_at, zone)),
        ("Bijgewerkt", local_time(log.updated_at, zone)),
        ("Model", params.name),
        ("Temperatuur", _decimal(params.temperature)),
        ("Max. tokens (max_tokens)", nl_number(params.max_tokens)),
        ("top_p", _decimal(params.top_p)),
        ("frequency_penalty", _decimal(params.frequency_penalty)),
        ("presence_penalty", _decimal(params.presence_penalty)),
        ("Template", log.prompt.template_name),
        ("Templateversie", log.prompt.template_version),
        ("Modules", ", ".join(log.prompt.modules_used or []) or None),
        ("Prompttokens", nl_number(r.tokens_prompt)),
        ("Antwoordtokens", nl_number(r.tokens_completion)),
        ("Tokens totaal", nl_number(r.tokens_total)),
        ("Tokens uit cache", nl_number(r.tokens_cached)),
        ("Redeneertokens", nl_number(r.tokens_reasoning)),
        ("Eindreden (finish_reason)", r.finish_reason),
        ("Antwoord-id (response_id)", r.response_id),
        ("Antwoordmodel", r.response_model),
        ("Systeemvingerafdruk (system_fingerprint)", r.system_fingerprint),
        ("Aangemaakt door de API (created)", _created(r.created_at, zone)),
        ("HTTP-status", (response and response.http_status) or (error and error.http_status)),
        ("Duur", nl_duration(_duration(log))),
        ("Tijd tot eerste token", nl_duration(r.ttft_ms)),
        ("Kosten", _cost(log.cost)),
        ("Fouttype", error.error_type if error else None),
        (
            "Metagegevens (metadata)",
            json.dumps(log.metadata, ensure_ascii=False) if log.metadata else None,
        ),
        ("Foutmelding", error.message if error else None),
    ]
    return [{"veld": name, "waarde": "—" if value is None else str(value)} for name, value in rows]


def _created(seconds: int | None, zone: tzinfo | None) -> str | None:
    """The API's ``created`` (Unix seconds) as a local time, the number beside it."""
    if seconds is None:
        return None
    return f"{local_time(datetime.fromtimestamp(seconds, timezone.utc), zone)} ({seconds})"


def _table(st: Any, rows: Sequence[Mapping[str, object]]) -> None:
    """A table that fits its column: cells wrap, nothing needs sideways scrolling."""
    st.table(list(rows), hide_index=True, border="horizontal")


def show_log(
    repo: GenerationLogRepository, log_id: int, *, zone: tzinfo | None = None
) -> GenerationContext | None:
    """One row whole: every column, prompt, request, response, error and traceback.

    Beside it the other attempts of the same call, the definitie it belongs to (a
    button to ``?definitie=ID``) or "geen definitie", and a diff against another row.
    Returns the row, or None (and says so) when there is none with this id.
    """
    st = _st()
    zone = zone or _zone()
    try:
        log = repo.get(log_id)
    except (LogNotFoundError, InvalidLogError):  # no such row, or an id no store can hold
        st.warning(f"Log {log_id} bestaat niet (of is gewist).")
        return None
    st.subheader(f"Log {log.id} · {_status(log.status)}")
    if log.definitie_id is None:
        st.info("Geen definitie: deze poging is aan geen definitie gekoppeld.")
    elif st.button(f"Open definitie {log.definitie_id}", key=f"audited-def-{log.id}"):
        _go(definitie=log.definitie_id)
    if log.error is not None:
        st.error(f"{log.error.error_type}: {log.error.message}")
    _attempts(st, repo, log, zone)
    _table(st, _fields(log, zone))
    if log.definitie_id is not None:
        _reviews(st, repo, log.definitie_id, zone)
    _chain_status(st, repo, log.id)
    st.markdown("**Volledige prompt**")
    st.code(log.prompt.full_text, language="markdown", wrap_lines=True)
    if log.request_json:
        with st.expander("Verzoek (request JSON)"):
            pretty = st.toggle("Leesbaar opmaken", key=f"audited-pretty-{log.id}")
            st.caption(
                "Opgemaakt om te lezen; opgeslagen zijn de bytes zonder opmaak."
                if pretty
                else "Precies zoals verzonden en opgeslagen (de bytes van het verzoek)."
            )
            text = _pretty(log.request_json) if pretty else log.request_json
            st.code(text, language="json", wrap_lines=True)
    if log.response is not None and log.response.content is not None:
        st.markdown("**Antwoord**")
        st.code(log.response.content, language=None, wrap_lines=True)
    if log.error is not None and log.error.traceback:
        with st.expander("Traceback"):
            st.code(log.error.traceback, language="python", wrap_lines=True)
    _diff(st, repo, log)
    return log


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _attempts(st: Any, repo: GenerationLogRepository, log: GenerationContext, zone: Any) -> None:
    """The other attempts of the same SDK call (its retries), side by side."""
    others = sorted(query.history(repo, call_id=log.call_id, limit=50), key=lambda r: r.id or 0)
    if len(others) < 2:  # noqa: PLR2004 - this row alone
        st.caption(f"Aanroep {log.call_id}: één poging.")
        return
    st.markdown(f"**Pogingen van deze aanroep** ({len(others)}, call_id {log.call_id})")
    for column, attempt in zip(st.columns(len(others)), others, strict=True):
        with column:
            failure = attempt.error.error_type if attempt.error else ""
            column.markdown(
                f"Poging {attempt.attempt} · log {attempt.id}  \n"
                f"{_status(attempt.status)} {failure}  \n"
                f"{local_time(attempt.logged_at, zone)}  \n"
                f"definitie: {attempt.definitie_id or 'geen'}"
            )
            if attempt.id == log.id:
                column.caption("(deze)")
            elif column.button(f"Open log {attempt.id}", key=f"audited-attempt-{attempt.id}"):
                _go(log=attempt.id or 0)


# The diff's parameters (query.diff_prompts's names) in Dutch; the request's own
# fields (request.*) keep the API's names, as the request JSON shows them
PARAMETER_LABELS = {
    "model_name": "Model",
    "model_temperature": "Temperatuur",
    "model_max_tokens": "Max. tokens",
    "model_top_p": "top_p",
    "model_frequency_penalty": "frequency_penalty",
    "model_presence_penalty": "presence_penalty",
    "prompt_template_name": "Template",
    "prompt_template_version": "Templateversie",
    "prompt_modules_used": "Modules",
    "endpoint": "Eindpunt",
    "stream": "Gestreamd",
}


def _diff(st: Any, repo: GenerationLogRepository, log: GenerationContext) -> None:
    key = f"audited-diff-{log.id}"
    raw = st.query_params.get("diff")
    if key not in st.session_state and raw and raw.isdigit() and int(raw) > 0:
        st.session_state[key] = int(raw)
    with st.expander("Vergelijk met een andere log", expanded=key in st.session_state):
        other = st.number_input("Log-id", min_value=1, value=None, step=1, key=key)
        if other is None:
            st.query_params.pop("diff", None)
            return
        st.query_params["diff"] = str(int(other))
        try:
            found = query.diff_prompts(repo, log.id or 0, int(other))
        except LogNotFoundError:
            st.warning(f"Log {int(other)} bestaat niet.")
            return
        if found.parameters:
            _table(
                st,
                [
                    {
                        "Parameter": PARAMETER_LABELS.get(name, name),
                        f"log {found.a}": str(a),
                        f"log {found.b}": str(b),
                    }
                    for name, (a, b) in found.parameters.items()
                ],
            )
        st.code(found.diff or "(de prompts zijn gelijk)", language="diff", wrap_lines=True)


# -- the Logboek --------------------------------------------------------------------------


def logboek(
    repo: GenerationLogRepository, *, page_size: int = PAGE_SIZE, zone: tzinfo | None = None
) -> None:
    """Every row, newest first, paged and filtered; the row in ``?log=ID`` opened whole.

    Filters as the CLI's: status, model, template and version, definitie, dates and
    full-text search. The linked row is shown above the listing. The URL carries the
    row, the filters (``URL_FILTERS``), the page (``na``) and a diff's other row
    (``diff``), so a reload or a shared link shows the same screen. Clicking a row in
    the listing (or choosing it below) opens it.
    """
    st = _st()
    zone = zone or _zone()
    _filters_from_url(st)
    selected = _param_id(st, "log", "log")
    if selected is not None:  # a link's row first, so that it is on the first screen
        show_log(repo, selected, zone=zone)
        st.divider()
    filters = _filters(st, zone)
    _filters_to_url(st)
    if filters is not None:
        _listing(st, repo, filters, page_size=page_size, selected=selected, zone=zone)


# The library's own messages are English; those a person can cause in the filters, in Dutch.
_FIELD_ERRORS = {"search": "zoek op minstens één woord (leestekens alleen vinden niets)."}


def _filters(st: Any, zone: tzinfo | None) -> dict[str, Any] | None:
    """The filters the user set, or None (and a one-line error) when one is bad."""
    with st.expander("Filters", expanded=False):
        left, middle, right = st.columns(3)
        status = left.selectbox(
            "Status", list(_STATUS_IN_URL), key="logboek-status", placeholder="Kies een status"
        )
        model = left.text_input("Model", key="logboek-model")
        template = middle.text_input("Template", key="logboek-template")
        version = middle.text_input("Templateversie", key="logboek-version")
        actor = left.text_input("Aangevraagd door (actor)", key="logboek-actor")
        session = middle.text_input("Sessie", key="logboek-session")
        definitie = right.text_input("Definitie-id", key="logboek-definitie")
        reviewed = right.selectbox(
            "Beoordeling", list(REVIEWED_LABELS), key="logboek-reviewed", placeholder="Kies"
        )
        period = _days(right, "logboek", zone)
        search = st.text_input("Zoeken in prompt en antwoord", key="logboek-search")
    filters: dict[str, Any] = {
        "status": _STATUS_IN_URL[status],
        "model": model.strip() or None,
        "template_name": template.strip() or None,
        "template_version": version.strip() or None,
        "search": search.strip() or None,
        "actor": actor.strip() or None,
        "session": session.strip() or None,
        "reviewed": REVIEWED_LABELS[reviewed],
    }
    if definitie.strip():
        if not definitie.strip().isdigit():
            st.error(f"Definitie-id '{definitie}' is geen geheel getal.")
            return None
        filters["definitie_id"] = int(definitie)
    if isinstance(period, str):
        st.error(period)
        return None
    return {**filters, **period}


def _days(box: Any, prefix: str, zone: tzinfo | None) -> dict[str, datetime] | str:
    """A period of local days, typed as dd-mm-jjjj (a date picker would speak English).

    ``since`` and ``until`` as the queries take them, or the one-line error to show.
    """
    local = zone or datetime.now().astimezone().tzinfo
    period: dict[str, datetime] = {}
    for name, label, shift in (("since", "Van (dd-mm-jjjj)", 0), ("until", "Tot en met", 1)):
        text = box.text_input(label, key=f"{prefix}-{name}", placeholder="dd-mm-jjjj")
        if not text.strip():
            continue
        try:
            day = datetime.strptime(text.strip(), "%d-%m-%Y").date()  # noqa: DTZ007 - a day
        except ValueError:
            return f"'{text}' is geen datum: schrijf dd-mm-jjjj, bijvoorbeeld 01-12-2026."
        period[name] = datetime.combine(day + timedelta(days=shift), datetime.min.time(), local)
    return period


def _listing(
    st: Any,
    repo: GenerationLogRepository,
    filters: dict[str, Any],
    *,
    page_size: int,
    selected: int | None,
    zone: tzinfo | None,
) -> None:
    """One page of rows (keyset paging: each page continues after the last id shown)."""
    key = json.dumps(filters, default=str, sort_keys=True)
    pages = _pages(st, key)
    found = _read_page(st, repo, filters, after_id=pages[-1], limit=page_size)
    if found is None:
        return
    total, rows = found
    if not rows:
        st.info("Geen rijen bij deze filters." if total == 0 else "Geen rijen meer op deze pagina.")
        if len(pages) > 1:
            _page_buttons(st, pages, rows, last=True)
        return
    first = (len(pages) - 1) * page_size
    st.caption(
        f"{_count(total, 'rij', 'rijen')}; rij {nl_number(first + 1)} tot en met "
        f"{nl_number(first + len(rows))}, nieuwste eerst. Klik op een rij om haar te openen."
    )
    verdicts = repo.latest_verdicts([r.definitie_id for r in rows if r.definitie_id is not None])
    ids = [row.id for row in rows]
    clicked = st.dataframe(
        [_summary(row, zone, verdicts) for row in rows],
        hide_index=True,
        on_select="rerun",
        selection_mode=["single-row", "single-cell"],  # a click on any cell opens its row
        key=f"logboek-rows-{key}-{pages[-1]}-{selected}",
    )
    selection = clicked.selection if clicked is not None else {}
    picked = [*selection.get("rows", []), *(cell[0] for cell in selection.get("cells", []))]
    if picked and ids[picked[0]] != selected:
        _go(log=ids[picked[0]] or 0)
    _page_buttons(st, pages, rows, last=first + len(rows) >= total)
    chosen = st.selectbox(
        "Open een rij",
        ids,
        index=ids.index(selected) if selected in ids else None,
        format_func=lambda i: _label(next(r for r in rows if r.id == i), zone),
        placeholder="Kies een rij om haar helemaal te zien",
        key=f"logboek-open-{key}-{pages[-1]}-{selected}",
    )
    if chosen is not None and chosen != selected:
        _go(log=chosen)


def _read_page(
    st: Any, repo: GenerationLogRepository, filters: dict[str, Any], **page: Any
) -> tuple[int, list[GenerationContext]] | None:
    """How many rows match, and one page of them; None after a one-line error."""
    try:
        return query.count(repo, **filters), query.history(repo, **filters, **page)
    except AuditedOpenAIError as exc:
        said = _FIELD_ERRORS.get(getattr(exc, "field", None) or "", str(exc))
        st.error(f"Deze filters gaan niet: {said}")
        return None


def _page_buttons(
    st: Any, pages: list[int | None], rows: list[GenerationContext], *, last: bool
) -> None:
    back, forward, _rest = st.columns([1, 1, 4])
    if back.button("← Nieuwer", disabled=len(pages) == 1, key="logboek-back"):
        pages.pop()
        st.rerun()
    if forward.button("Ouder →", disabled=last, key="logboek-next"):
        pages.append(rows[-1].id)
        st.rerun()


def _pages(st: Any, key: str) -> list[int | None]:
    """The ``after_id`` of each page seen under these filters; the URL's ``na`` follows."""
    if "logboek-filter-key" not in st.session_state:  # a new session: the page of the URL
        st.session_state["logboek-filter-key"] = key
        st.session_state["logboek-pages"] = [None, *_cursors(st.query_params.get("na"))]
    if st.session_state.get("logboek-filter-key") != key:
        st.session_state["logboek-filter-key"] = key
        st.session_state["logboek-pages"] = [None]
    pages: list[int | None] = st.session_state["logboek-pages"]
    if len(pages) > 1:
        st.query_params["na"] = ",".join(str(page) for page in pages[1:])
    else:
        st.query_params.pop("na", None)
    return pages


def _cursors(raw: str | None) -> list[int]:
    """The pages' ``after_id`` in ``?na=120,95`` (a bad list is ignored: page one)."""
    parts = (raw or "").split(",")
    return [int(p) for p in parts] if all(p.isdigit() for p in parts) and raw else []


def _summary(
    row: GenerationContext, zone: tzinfo | None, verdicts: Mapping[int, str]
) -> dict[str, object]:
    verdict = verdicts.get(row.definitie_id) if row.definitie_id is not None else None
    return {
        "log": row.id,
        "tijd": local_time(row.logged_at, zone),
        "status": _status(row.status),
        "definitie": "geen" if row.definitie_id is None else str(row.definitie_id),
        "poging": row.attempt,
        "model": row.prompt.model_params.name,
        "template": _template(row.prompt.template_name, row.prompt.template_version),
        "tokens": nl_number(row.response.tokens_total if row.response else None),
        "duur": nl_duration(_duration(row)),
        "beoordeling": VERDICT_LABELS[verdict] if verdict else "",
        "melding": row.error.message[:200] if row.error else "",
    }


def _template(name: str | None, version: str | None) -> str:
    return f"{name or '—'} {version or ''}".strip()


def _label(row: GenerationContext, zone: tzinfo | None) -> str:
    definitie = f"definitie {row.definitie_id}" if row.definitie_id else "geen definitie"
    return (
        f"log {row.id} · {_status(row.status)} · poging {row.attempt} · "
        f"{local_time(row.logged_at, zone)} · {definitie}"
    )


# -- a definitie's details ----------------------------------------------------------------


def show_generation_details(
    repo: GenerationLogRepository,
    definitie_id: int,
    *,
    expanded: bool = False,
    zone: tzinfo | None = None,
) -> None:
    """The "Generatie Details" of a definitie: the generation that produced it.

    That is its latest successful row (a replay is never the source). When a later
    generation for the definitie failed (a regeneration), or none succeeded (a
    hand-written definitie), it says so instead of presenting a failure as the
    definitie's source.
    """
    st = _st()
    zone = zone or _zone()
    logs = [log for log in repo.get_all_for_definitie(definitie_id) if log.replay_of is None]
    if not logs:
        st.info(NO_LOG_MESSAGE)
        return
    produced = next((log for log in reversed(logs) if log.status == "success"), None)
    later = [
        log
        for log in logs
        if log.status != "success" and (produced is None or (log.id or 0) > (produced.id or 0))
    ]
    log = produced or logs[-1]
    with st.expander("📊 Generatie Details", expanded=expanded):
        _not_the_source(st, produced, later)
        _failed_before(st, repo, logs, produced)
        _metrics(st, log)
        st.caption(
            f"Log {log.id} · {_status(log.status)} · poging {log.attempt} · template "
            f"{log.prompt.template_name or '—'} · modules "
            f"{', '.join(log.prompt.modules_used or []) or '—'} · "
            f"{local_time(log.logged_at, zone)}"
            + (f" · aangevraagd door {log.actor}" if log.actor else "")
        )
        if log.error is not None:
            st.error(f"{log.error.error_type}: {log.error.message}")
        _reviews(st, repo, definitie_id, zone)
        _chain_status(st, repo, log.id)
        if st.checkbox("Toon Volledige Prompt", key=f"audited-prompt-{definitie_id}"):
            st.code(log.prompt.full_text, language="markdown", wrap_lines=True)
        if st.checkbox("Toon alle velden", key=f"audited-fields-{definitie_id}"):
            _table(st, _fields(log, zone))
        if st.button("Open in het logboek", key=f"audited-open-{definitie_id}"):
            _go(log=log.id or 0)


def _reviews(st: Any, repo: GenerationLogRepository, definitie_id: int, zone: Any) -> None:
    """The reviews of a definitie, oldest first, with any edited text; or that it has none."""
    found = repo.reviews(definitie_id=definitie_id)
    if not found:
        st.caption(f"Definitie {definitie_id} is nog niet beoordeeld.")
        return
    st.markdown(f"**Beoordelingen van definitie {definitie_id}**")
    _table(
        st,
        [
            {
                "tijd": local_time(review.reviewed_at, zone),
                "oordeel": VERDICT_LABELS[review.verdict],
                "beoordelaar": review.reviewer,
                "log": str(review.log_id),
                "toelichting": review.note or "—",
            }
            for review in found
        ],
    )
    for review in found:
        if review.edited_text is not None:
            with st.expander(
                f"Bewerkte tekst ({review.reviewer}, {local_time(review.reviewed_at, zone)})"
            ):
                st.text(review.edited_text)


def beoordeel(
    repo: GenerationLogRepository,
    definitie_id: int,
    *,
    reviewer: str | None = None,
    text: str | None = None,
) -> Review | None:
    """A reviewer's form: approve, reject or edit a definitie; records the review.

    ``reviewer`` is the signed-in person (else the form asks), ``text`` the definitie
    as generated (the start of an edit). Returns the review recorded, or None.
    """
    st = _st()
    with st.form(f"audited-review-{definitie_id}", clear_on_submit=True):
        who = reviewer or st.text_input("Beoordelaar", key=f"audited-reviewer-{definitie_id}")
        label = st.radio("Oordeel", list(VERDICT_LABELS.values()), horizontal=True)
        note = st.text_area("Toelichting (niet verplicht)")
        edited = st.text_area("Bewerkte tekst (alleen bij 'bewerkt')", value=text or "")
        submitted = st.form_submit_button("Beoordeling vastleggen")
    if not submitted:
        return None
    if not (who or "").strip():
        st.error("Vul in wie beoordeelt: elke beoordeling zegt door wie.")
        return None
    verdict = next(key for key, shown in VERDICT_LABELS.items() if shown == label)
    if verdict == "edited" and edited.strip() == (text or "").strip():
        st.error(
            "Bewerkt, maar de tekst is niet veranderd: pas de tekst aan of kies een ander oordeel."
        )
        return None
    try:
        made = repo.record_review(
            definitie_id,
            verdict,  # type: ignore[arg-type]  # a key of VERDICT_LABELS
            reviewer=(who or "").strip(),
            note=note.strip() or None,
            edited_text=edited if verdict == "edited" else None,
        )
    except InvalidLogError as exc:
        st.error(f"Beoordeling niet vastgelegd: {exc}")
        return None
    st.success(f"Beoordeling {made.id} vastgelegd: {label} door {made.reviewer}.")
    return made


def _not_the_source(
    st: Any, produced: GenerationContext | None, later: list[GenerationContext]
) -> None:
    """Say so when the row shown did not make the definitie, or a later one failed."""
    if produced is None:
        st.warning(
            "Geen geslaagde generatie voor deze definitie: de tekst komt niet uit een "
            f"generatie. Mislukte pogingen: {_ids(later)}; hieronder de laatste."
        )
    elif later:
        st.warning(
            f"Een latere generatie voor deze definitie is mislukt ({_ids(later)}); "
            f"de definitie komt uit log {produced.id}, hieronder."
        )


def _failed_before(
    st: Any,
    repo: GenerationLogRepository,
    logs: Sequence[GenerationContext],
    produced: GenerationContext | None,
) -> None:
    """Say so when attempts before the one that made the definitie failed.

    Its call's retries (not linked to the definitie themselves) or earlier generations.
    """
    if produced is None:
        return
    retries = query.history(repo, call_id=produced.call_id, limit=50)
    earlier = {
        log.id: log
        for log in (*logs, *retries)
        if log.status != "success" and (log.id or 0) < (produced.id or 0)
    }
    if earlier:
        st.info(
            f"Eerder mislukt: {_ids(sorted(earlier.values(), key=lambda r: r.id or 0))}; "
            f"de definitie komt uit log {produced.id} (poging {produced.attempt})."
        )


def _ids(logs: Sequence[GenerationContext]) -> str:
    return ", ".join(f"log {log.id} ({_status(log.status)})" for log in logs)


def _duration(log: GenerationContext) -> int | None:
    if log.response is not None and log.response.duration_ms is not None:
        return log.response.duration_ms
    return log.error.duration_ms if log.error else None


def _metrics(st: Any, log: GenerationContext) -> None:
    params, response = log.prompt.model_params, log.response
    duration = _duration(log)
    col1, col2, col3 = st.columns(3)
    col1.metric("Model", params.name)
    col1.metric("Temperatuur", _decimal(params.temperature))
    col1.metric("Max. tokens", nl_number(params.max_tokens))
    col2.metric("Tokens gebruikt", nl_number(response.tokens_total if response else None))
    col2.metric("Prompttokens", nl_number(response.tokens_prompt if response else None))
    col2.metric("Antwoordtokens", nl_number(response.tokens_completion if response else None))
    cost = log.cost
    col2.metric("Kosten", nl_money(cost.amount, cost.currency) if cost else "—")
    col3.metric("Generatietijd", nl_duration(duration))
    col3.metric("Templateversie", log.prompt.template_version or "—")
    col3.metric("Eindreden", (response.finish_reason if response else None) or "—")


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
            st.success(f"Keten geverifieerd tot gebeurtenis {nl_number(whole.events)}")
        else:
            st.error(
                f"Keten niet in orde: {len(whole.problems)} probleem/problemen, "
                f"de eerste: {whole.problems[0].message} (audited-openai verify)"
            )
        return
    st.caption(
        f"Keten: log {log_id} klopt met zijn laatste gebeurtenis (van {nl_number(row.events)}); "
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


# -- the dashboard ------------------------------------------------------------------------


def token_dashboard(
    repo: GenerationLogRepository, *, days: int = 30, zone: tzinfo | None = None
) -> None:
    """Tokens per day, failure rate per template, most expensive, recent failures.

    The days are the viewer's (the browser's time zone, else the server's), the last
    ``days`` of them.
    """
    st = _st()
    zone = zone or _zone() or datetime.now().astimezone().tzinfo
    st.subheader("Tokens per dag")
    since = datetime.now(timezone.utc) - timedelta(days=days + 1)
    usage = query.token_usage_by_day(repo, zone=zone, since=since)
    if usage:
        st.caption(
            "Alleen geslaagde generaties: mislukte pogingen melden geen tokengebruik. "
            f"Dagen in de tijdzone {zone}; dagen zonder generaties staan er met 0."
        )
        st.altair_chart(_usage_chart(usage, days), width="stretch")
    else:
        st.info(f"Geen geslaagde generaties in de laatste {days} dagen.")
    _cost_per_day(st, usage, days)
    st.subheader("Foutpercentage per template")
    st.caption(
        "Per poging: een poging die mislukte en daarna opnieuw werd geprobeerd telt als "
        "mislukt, ook als de herhaling slaagde."
    )
    _table(
        st,
        [
            {
                "template": row["template_name"] or "—",
                "versie": row["template_version"] or "—",
                "pogingen": nl_number(row["total"]),
                "mislukt": nl_number(row["failures"]),
                "foutpercentage": nl_percent(row["failure_rate"]),
            }
            for row in query.failure_rate_by_template(repo)
        ],
    )
    st.subheader("Duurste generaties")
    _table(st, [_expensive(row) for row in query.most_expensive(repo, 10)])
    _recent_failures(st, repo, zone)


def _cost_per_day(st: Any, usage: list[dict[str, Any]], days: int) -> None:
    if not usage:  # no successes: the tokens' section has said so
        return
    st.subheader("Kosten per dag")
    priced = [row for row in usage if row["priced"]]
    currencies = {row["cost_currency"] for row in priced}
    if not priced:
        st.info("Nog geen generaties met een prijs.")
        return
    if len(currencies) > 1 or None in currencies:
        st.warning("De kosten staan in meer dan één valuta: ze worden niet bij elkaar opgeteld.")
        return
    (currency,) = currencies
    unpriced = sum(row["generations"] - row["priced"] for row in usage)
    st.caption(
        "Kosten van de geslaagde generaties, berekend met de prijstabel bij het voltooien. "
        + (
            f"{nl_number(unpriced)} generaties zonder prijs (onbekend model) tellen niet mee."
            if unpriced
            else "Elke geslaagde generatie heeft een prijs."
        )
    )
    st.altair_chart(_cost_chart(usage, days, currency), width="stretch")


def _expensive(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "log": row["id"],
        "definitie": "geen" if row["definitie_id"] is None else str(row["definitie_id"]),
        "model": row["model_name"],
        "template": _template(row["prompt_template_name"], row["prompt_template_version"]),
        "tokens": nl_number(row["tokens_total"]),
        "duur": nl_duration(row["duration_ms"]),
        "kosten": nl_money(row["cost"], row["cost_currency"]),
    }


def _recent_failures(st: Any, repo: GenerationLogRepository, zone: tzinfo | None) -> None:
    st.subheader("Recente fouten")
    failures = sorted(
        (
            log
            for status in ("failed", "timeout")
            for log in query.history(repo, status=status, limit=10)
        ),
        key=lambda log: log.id or 0,
        reverse=True,
    )[:10]
    if failures:
        st.caption("Alle pogingen, ook herhaalde; open een rij in het Logboek voor alles.")
        _table(st, [_summary(log, zone, {}) for log in failures])
    else:
        st.success("Geen fouten.")


def _usage_chart(usage: list[dict[str, Any]], days: int) -> Any:
    """Tokens per day: bars on a time axis, empty days as 0, nl-NL numbers."""
    tokens = {_day(row): int(row["tokens_total"]) for row in usage}
    return _day_chart(tokens, days, "tokens", "Tokens", nl_number)


def _cost_chart(usage: list[dict[str, Any]], days: int, currency: str | None) -> Any:
    """The cost per day, beside the tokens: the same days, the amounts in ``currency``."""
    cost = {_day(row): float(row["cost"] or 0) for row in usage}
    return _day_chart(
        cost, days, "kosten", f"Kosten ({currency})", lambda v: nl_money(v, currency), decimals=4
    )


def _day(row: dict[str, Any]) -> date:
    return date.fromisoformat(str(row["day"])[:10])


SHOWN_DAYS = 7  # a chart shows at least a week, so that one day's bar is one of seven


def _day_chart(
    per_day: Mapping[date, float],
    days: int,
    field: str,
    title: str,
    label: Callable[[float], str],
    *,
    decimals: int = 0,
) -> Any:
    """Bars per day: every day of the period, empty days as 0, Dutch dates and numbers.

    The axis is the days' own Dutch names ("1 dec"), not a time scale: a time axis
    formats in the browser's locale and at its own ticks.
    """
    import altair as alt  # noqa: PLC0415 - Streamlit's own dependency

    last = max(per_day)
    first = max(min(per_day), last - timedelta(days=days - 1))
    first = min(first, last - timedelta(days=SHOWN_DAYS - 1))
    shown = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    names = [nl_date(day, year=False) for day in shown]  # the axis, in calendar order
    values = [
        {
            "dag": name,
            field: per_day.get(day, 0),
            "label": label(per_day.get(day, 0)),
            "datum": nl_date(day),
        }
        for day, name in zip(shown, names, strict=True)
    ]
    return (
        alt.Chart(alt.Data(values=values))  # type: ignore[no-untyped-call]
        .mark_bar()
        .encode(
            x=alt.X(
                "dag:O",
                title="Dag",
                sort=names,
                axis=alt.Axis(labelAngle=0, labelOverlap=True),
            ),
            y=alt.Y(f"{field}:Q", title=title, axis=alt.Axis(labelExpr=_dutch_axis(decimals))),
            tooltip=[alt.Tooltip("datum:N", title="Dag"), alt.Tooltip("label:N", title=title)],
        )
    )


def _dutch_axis(decimals: int = 0) -> str:
    """A Vega expression writing an axis label as nl-NL does: 14.000; 0,0125."""
    if not decimals:
        return "replace(format(datum.value, ',d'), regexp(',', 'g'), '.')"
    swapped = f"replace(format(datum.value, ',.{decimals}~f'), regexp(',', 'g'), '_')"
    return f"replace(replace({swapped}, '.', ','), regexp('_', 'g'), '.')"


# -- two variants compared ---------------------------------------------------------------

COMPARED_BY = {
    "template_version": "Templateversie",
    "template_name": "Template",
    "model": "Model",
}
_CENSUS_KEY = {"template_version": "template_version", "template_name": "template_name"}
MEASURE_LABELS = {
    "attempt_failure": ("het foutpercentage per poging", "faalt minder vaak per poging"),
    "call_failure": ("het foutpercentage per aanroep", "faalt minder vaak per aanroep"),
    "approval": ("het percentage goedgekeurd", "wordt vaker goedgekeurd"),
    "edit": ("het percentage bewerkt", "hoeft minder vaak bewerkt te worden"),
    "latency": ("de duur", "is sneller"),
    "tokens": ("het tokengebruik", "gebruikt minder tokens"),
    "cost": ("de kosten", "zijn goedkoper"),
}


def vergelijk(repo: GenerationLogRepository, *, zone: tzinfo | None = None) -> None:
    """Two variants compared (``query.compare``): the table, the verdicts, the charts.

    Pick what to compare on (template version, template or model), the two variants
    and a period; shown per variant are calls, attempts, definities, the failure rates
    with their 95 % intervals, duration, tokens and cost, and per measure whether the
    difference is more than chance, in words. Charts: the failure rates with their
    intervals, and the distributions of duration and cost.
    """
    st = _st()
    zone = zone or _zone()
    st.subheader("Vergelijk twee varianten")
    left, middle, right = st.columns(3)
    by = left.selectbox(
        "Vergelijk op",
        list(COMPARED_BY),
        format_func=COMPARED_BY.get,
        key="vergelijk-by",
        placeholder="Kies",
    )
    options = _variants(repo, by)
    if len(options) < 2:  # noqa: PLR2004 - a comparison needs two
        st.info(f"Er is nog maar {len(options)} {COMPARED_BY[by].lower()}: niets te vergelijken.")
        return
    a = middle.selectbox(
        "Variant A", options, index=len(options) - 2, key="vergelijk-a", placeholder="Kies"
    )
    b = right.selectbox(
        "Variant B", options, index=len(options) - 1, key="vergelijk-b", placeholder="Kies"
    )
    days = _days(left, "vergelijk", zone)
    if isinstance(days, str):
        st.error(days)
        return
    if a == b:
        st.warning("Kies twee verschillende varianten.")
        return
    found = query.compare(repo, a, b, by=by, since=days.get("since"), until=days.get("until"))
    _table(st, _compared_rows(found))
    st.markdown("**Conclusies** (95 %-betrouwbaarheid; een verschil is aangetoond bij p < 0,05)")
    st.markdown("\n".join(f"- {_verdict(d, found)}" for d in found["differences"]))
    if found["notes"]:
        st.warning("De kosten staan in meer dan één valuta: die worden niet vergeleken.")
    st.altair_chart(_rates_chart(found), width="stretch")
    for label, title in (("latency", "Duur (ms)"), ("cost", f"Kosten ({found['currency']})")):
        if found["histograms"][label]["edges"]:
            st.altair_chart(_histogram_chart(found, label, title), width="stretch")


def _variants(repo: GenerationLogRepository, by: str) -> list[str]:
    """The values of ``by`` in the trail, sorted (from the census: one grouped read)."""
    key = _CENSUS_KEY.get(by, "model")
    return sorted({str(row[key]) for row in repo.census() if row[key] is not None})


def _compared_rows(found: dict[str, Any]) -> list[dict[str, str]]:
    """The comparison's table: one row a figure, one column a variant."""
    a, b = found["variants"]

    def rate(v: dict[str, Any], key: str) -> str:
        return _interval(v[key])

    def money(value: float | None) -> str:
        return nl_money(value, found["currency"])

    def ms(value: float | None) -> str:
        return nl_number(value, 0, "ms")

    figures: list[tuple[str, Any]] = [
        ("Aanroepen", lambda v: nl_number(v["calls"])),
        ("Pogingen", lambda v: nl_number(v["attempts"])),
        ("Definities", lambda v: nl_number(v["definities"])),
        ("Foutpercentage per poging (95 %-interval)", lambda v: rate(v, "attempt_failure")),
        ("Foutpercentage per aanroep (95 %-interval)", lambda v: rate(v, "call_failure")),
        ("Beoordeelde definities", lambda v: nl_number(v["reviewed"])),
        ("Goedgekeurd (95 %-interval)", lambda v: rate(v, "approval")),
        ("Bewerkt (95 %-interval)", lambda v: rate(v, "edit")),
        ("Duur, mediaan", lambda v: ms(v["latency"]["p50"])),
        ("Duur, 95e percentiel", lambda v: ms(v["latency"]["p95"])),
        ("Tokens, gemiddeld", lambda v: nl_number(v["tokens"]["mean"])),
        ("Tokens, mediaan", lambda v: nl_number(v["tokens"]["p50"])),
        ("Tokens, 95e percentiel", lambda v: nl_number(v["tokens"]["p95"])),
        ("Kosten, gemiddeld", lambda v: money(v["cost"]["mean"])),
        ("Kosten, mediaan", lambda v: money(v["cost"]["p50"])),
        ("Kosten, 95e percentiel", lambda v: money(v["cost"]["p95"])),
        ("Kosten, totaal", lambda v: money(v["cost"]["total"])),
        ("Zonder prijs", lambda v: nl_number(v["cost"]["unknown"])),
        (
            "Eindredenen",
            lambda v: (
                ", ".join(f"{k} {nl_number(n)}" for k, n in v["finish_reasons"].items()) or "—"
            ),
        ),
    ]
    return [{"": name, a["variant"]: shown(a), b["variant"]: shown(b)} for name, shown in figures]


def _interval(rate: dict[str, Any]) -> str:
    """``8,1 % (7,9 tot 8,3 %)``: a rate with its 95 % interval."""
    if rate["rate"] is None:
        return "—"
    low, high = nl_number(rate["low"] * 100, 1), nl_percent(rate["high"] * 100)
    return f"{nl_percent(rate['rate'] * 100)} ({low} tot {high})"


def _verdict(difference: dict[str, Any], found: dict[str, Any]) -> str:
    """One measure's verdict in Dutch, from the test's figures."""
    label, verb = MEASURE_LABELS[difference["measure"]]
    if "test" not in difference:
        return f"{label.capitalize()}: niet vergeleken (te weinig rijen in een variant)."
    a, b = found["variants"]
    if difference["kind"] == "rate":
        key = difference["measure"]
        shown = [nl_percent(v[key]["rate"] * 100) for v in (a, b)]
    else:
        measure = difference["measure"]
        values = [v[measure]["p50"] for v in (a, b)]
        if measure == "latency":
            shown = [nl_number(x, 0, "ms") for x in values]
        elif measure == "tokens":
            shown = [nl_number(x, 0, "tokens") for x in values]
        else:
            shown = [nl_money(x, found["currency"]) for x in values]
        shown[0] = f"mediaan {shown[0]}"
    p = difference["p"]
    said = "p < 0,001" if p < 0.001 else f"p = {p:.3f}".replace(".", ",")  # noqa: PLR2004
    figures = f"{shown[0]} tegen {shown[1]}"
    if not difference["shown"]:
        return f"Geen verschil aangetoond in {label} bij deze steekproefomvang: {figures} ({said})."
    if difference["kind"] == "rate":
        overlap = difference["intervals_overlap"]
        said += "; de intervallen overlappen" + ("" if overlap else " niet")
    if difference["measure"] == "cost":
        return f"De kosten van {difference['better']} zijn lager: {figures} ({said})."
    return f"{difference['better']} {verb}: {figures} ({said})."


def _rates_chart(found: dict[str, Any]) -> Any:
    """The failure rates per variant, each with its 95 % interval as a line."""
    import altair as alt  # noqa: PLC0415 - Streamlit's own dependency

    values = [
        {
            "variant": v["variant"],
            "maat": maat,
            "percentage": (v[key]["rate"] or 0) * 100,
            "van": (v[key]["low"] or 0) * 100,
            "tot": (v[key]["high"] or 0) * 100,
            "label": _interval(v[key]),
        }
        for v in found["variants"]
        for key, maat in (("attempt_failure", "per poging"), ("call_failure", "per aanroep"))
    ]
    base = alt.Chart(alt.Data(values=values)).encode(  # type: ignore[no-untyped-call]
        y=alt.Y("variant:N", title="Variant"),
        yOffset=alt.YOffset("maat:N"),
        color=alt.Color("maat:N", title="Foutpercentage"),
        tooltip=[
            alt.Tooltip("variant:N", title="Variant"),
            alt.Tooltip("maat:N", title="Foutpercentage"),
            alt.Tooltip("label:N", title="Met 95 %-interval"),
        ],
    )
    axis = alt.Axis(labelExpr=_dutch_axis(1) + " + ' %'")
    rules = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("van:Q", title="Foutpercentage (%), met 95 %-interval", axis=axis),
        x2="tot:Q",
    )
    points = base.mark_point(filled=True, size=80).encode(x="percentage:Q")
    return (rules + points).properties(title="Foutpercentage met 95 %-interval")


def _histogram_chart(found: dict[str, Any], label: str, title: str) -> Any:
    """The distribution of ``label`` per variant, in the same bins, overlaid."""
    import altair as alt  # noqa: PLC0415 - Streamlit's own dependency

    bins = found["histograms"][label]
    edges, decimals = bins["edges"], 0 if label == "latency" else 6
    values = [
        {
            "variant": variant,
            "van": edges[i],
            "tot": edges[i + 1],
            "aantal": n,
            "bereik": f"{nl_number(edges[i], decimals)} tot {nl_number(edges[i + 1], decimals)}",
            "label": nl_number(n),
        }
        for variant, counts in bins["counts"].items()
        for i, n in enumerate(counts)
    ]
    return (
        alt.Chart(alt.Data(values=values))  # type: ignore[no-untyped-call]
        .mark_bar(opacity=0.55, binSpacing=0)
        .encode(
            x=alt.X(
                "van:Q",
                title=title,
                bin="binned",
                axis=alt.Axis(labelExpr=_dutch_axis(decimals), tickMinStep=10**-decimals),
            ),
            x2="tot:Q",
            y=alt.Y(
                "aantal:Q",
                title="Geslaagde pogingen",
                stack=None,
                axis=alt.Axis(labelExpr=_dutch_axis(), tickMinStep=1),
            ),
            color=alt.Color("variant:N", title="Variant"),
            tooltip=[
                alt.Tooltip("variant:N", title="Variant"),
                alt.Tooltip("bereik:N", title=title),
                alt.Tooltip("label:N", title="Aantal"),
            ],
        )
        .properties(title=f"Verdeling: {title[0].lower()}{title[1:]}")
    )


# -- the status panel ---------------------------------------------------------------------

PERIOD_LABELS = {
    "day": "Laatste 24 uur",
    "week": "Laatste 7 dagen",
    "previous_week": "De 7 dagen daarvoor",
}


def _period_rows(periods: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """The status panel's table: a period a row."""
    return [
        {
            "periode": PERIOD_LABELS[name],
            "pogingen": nl_number(period["completed"]),
            "mislukt": nl_number(period["failures"]),
            "foutpercentage": nl_percent(period["failure_rate"]),
            "p50 (ms)": nl_number(period["p50_ms"]),
            "p95 (ms)": nl_number(period["p95_ms"]),
            "meest voorkomende fout": ", ".join(
                f"{error['error_type']} ({nl_number(error['n'])})" for error in period["top_errors"]
            )
            or "—",
        }
        for name, period in periods.items()
    ]


def status_panel(
    repo: GenerationLogRepository,
    *,
    pending_after: timedelta = timedelta(minutes=15),
    zone: tzinfo | None = None,
) -> dict[str, Any]:
    """The trail's health in Dutch: the figures and problems of ``query.status``.

    Returns the report it showed (``query.status``'s dictionary).
    """
    st = _st()
    zone = zone or _zone()
    found = query.status(repo, pending_after=pending_after)
    st.subheader("Status van het audit trail")
    definities, pending, size = found["definities"], found["pending"], found["size"]
    week, before = found["periods"]["week"], found["periods"]["previous_week"]
    col1, col2, col3, col4 = st.columns(4)
    col1.metric(
        "Definities zonder log",
        nl_number(len(definities["without_log"])) if definities["host_table"] else "—",
    )
    col2.metric("Rijen te lang in behandeling", nl_number(pending["stale"]))
    col3.metric(
        "Foutpercentage (7 dagen)",
        nl_percent(week["failure_rate"]),
        delta=_points(week["failure_rate"], before["failure_rate"]),
        delta_color="inverse",
    )
    col4.metric("Duur p95 (7 dagen)", nl_number(week["p95_ms"], 0, "ms"))
    col1.metric("Database", _nl_bytes(size["database_bytes"] or size["table_bytes"]))
    col2.metric("Rijen per dag", nl_number(size["rows_per_day"], 1))
    col3.metric("Ruimte over", nl_number(size["days_left"], 0, "dagen"))
    verified = found["chain"]["last_verify"]
    col4.metric("Laatste verificatie", _checked(verified, zone))
    for problem in found["problems"]:
        st.error(_dutch_problem(problem["kind"], found, zone))
    if not found["problems"]:
        st.success("Geen problemen gevonden.")
    _table(st, _period_rows(found["periods"]))
    schema = found["schema"]
    st.caption(
        f"Schemaversie {schema['version']}"
        + ("" if schema["current"] else f" (deze versie leest {schema['supported']})")
        + f"; keten: {nl_number(found['chain']['events'])} gebeurtenissen; "
        f"laatste checkpoint: {_checked(found['chain']['last_checkpoint'], zone)}. "
        "Een rij telt als mislukt bij een fout of time-out; in behandeling telt niet mee."
    )
    _retention(st, repo, zone)
    return found


def _retention(st: Any, repo: GenerationLogRepository, zone: tzinfo | None) -> None:
    """The retention policy and the legal holds, in one line each."""
    policy, holds = repo.retention(), repo.holds()
    if policy is None:
        st.caption(
            "Bewaartermijn: geen (alles blijft bewaard; `audited-openai retention --keep 2y`)."
        )
    else:
        forced = ", korter dan zes maanden (geforceerd)" if policy.forced else ""
        st.caption(
            f"Bewaartermijn: {policy.keep} ({nl_number(policy.keep_days)} dagen{forced}), "
            f"ingesteld {local_time(policy.set_at, zone)}; `audited-openai retain` past haar toe."
        )
    if holds:
        st.caption(
            "Juridische blokkade (blijft bewaard): "
            + "; ".join(f"definitie {h.definitie_id} ({h.reason})" for h in holds)
        )


def _count(n: int, one: str, more: str) -> str:
    return f"{nl_number(n)} {one if n == 1 else more}"


def dossier_button(
    repo: GenerationLogRepository, definitie_id: int, key: str | os.PathLike[str]
) -> None:
    """A button that builds the definitie's dossier (signed with ``key``) and offers it."""
    st = _st()
    if not st.button("Dossier samenstellen", key=f"audited-dossier-{definitie_id}"):
        return
    from audited_openai import dossier  # noqa: PLC0415 - only when asked for

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"dossier-definitie-{definitie_id}.zip"
        try:
            made = dossier.build(repo, definitie_id, path, key)
        except AuditedOpenAIError as exc:
            st.error(f"Geen dossier: {exc}")
            return
        data = path.read_bytes()
    st.download_button(
        f"Download dossier ({_count(made['rows'], 'generatie', 'generaties')}, "
        f"{_count(made['reviews'], 'beoordeling', 'beoordelingen')}, "
        f"{nl_number(len(data))} bytes)",
        data,
        file_name=path.name,
        mime="application/zip",
        key=f"audited-dossier-download-{definitie_id}",
    )
    st.caption("Controleren: `audited-openai check-dossier <bestand> --public-key <sleutel>`.")


def _points(now: float | None, before: float | None) -> str | None:
    """The change in percentage points, or None when either is unknown."""
    if now is None or before is None:
        return None
    return f"{nl_number(now - before, 1)} procentpunt t.o.v. de week ervoor"


def _nl_bytes(count: int | None) -> str:
    if count is None:
        return "—"
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if count >= size:
            return nl_number(count / size, 1, unit)
    return nl_number(count, 0, "bytes")


def _checked(record: dict[str, Any] | None, zone: tzinfo | None) -> str:
    if record is None:
        return "niet vastgelegd"
    when = local_time(datetime.fromisoformat(record["at"].replace("Z", "+00:00")), zone)
    if record["ok"] is None:
        return when
    return f"{when}, {'in orde' if record['ok'] else 'NIET in orde'}"


def _dutch_problem(kind: str, found: dict[str, Any], zone: tzinfo | None) -> str:
    """The problem ``kind`` of the report in Dutch (the CLI's line says it in English)."""
    if kind == "without_log":
        missing = found["definities"]["without_log"]
        ids = ", ".join(str(i) for i in missing[:20]) + (", ..." if len(missing) > 20 else "")  # noqa: PLR2004
        noun = "definitie" if len(missing) == 1 else "definities"
        return f"{nl_number(len(missing))} gegenereerde {noun} zonder geslaagde generatielog: {ids}"
    if kind == "stale_pending":
        pending = found["pending"]
        oldest = datetime.fromisoformat(pending["oldest"].replace("Z", "+00:00"))
        rows = "rij" if pending["stale"] == 1 else "rijen"
        return (
            f"{nl_number(pending['stale'])} {rows} langer dan "
            f"{nl_number(pending['after_s'] / 60)} minuten in behandeling (de oudste: log "
            f"{pending['oldest_id']}, sinds {local_time(oldest, zone)}): een proces stopte "
            "voordat het de rij afmaakte; `audited-openai reconcile` sluit zulke rijen af."
        )
    if kind == "verify_failed":
        verified = found["chain"]["last_verify"]
        return (
            f"De laatst vastgelegde verificatie ({_checked(verified, zone)}) vond "
            f"{nl_number(verified['problems'])} probleem/problemen: het audit trail is "
            "buiten de bibliotheek om veranderd. Draai `audited-openai verify` voor de details."
        )
    size = found["size"]
    return (
        f"Het volume van de database heeft nog ruimte voor {nl_number(size['days_left'], 1)} "
        f"dagen bij {nl_number(size['rows_per_day'], 1)} rijen per dag."
    )
