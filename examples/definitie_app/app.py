"""The definitie app in Streamlit: generate, definities with their details, the logboek.

    streamlit run examples/definitie_app/app.py

Reads OPENAI_API_KEY / OPENAI_BASE_URL like generate.py; without a key, a loopback
server plays the model (its answers say that they are offline examples).
``DEFINITIE_DB`` chooses the database (data/definities.db). Deep links:
``?definitie=ID`` opens a definitie with its Generatie Details, ``?log=ID`` a row of
the Logboek; the URL follows what is shown.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from contextlib import closing
from pathlib import Path

import openai
import streamlit as st

sys.path.insert(0, str(Path(__file__).parent))

from definities import DefinitionRepository
from generate import BEGRIPPEN
from generator import GenerationResult, UnifiedDefinitionGenerator
from prompts import PromptOrchestrator

from audited_openai import AuditedOpenAI, GenerationLogRepository, InvalidLogError, audit_context
from audited_openai.streamlit import (
    beoordeel,
    dossier_button,
    logboek,
    nl_duration,
    nl_number,
    show_generation_details,
    status_panel,
    token_dashboard,
    vergelijk,
)
from audited_openai.testing import LoopbackServer, Reply

DB = os.environ.get("DEFINITIE_DB", "data/definities.db")
SOURCES = {"generated": "gegenereerd", "imported": "geïmporteerd", "manual": "met de hand"}
VIEWS = ["Genereer", "Definities", "Logboek", "Tokengebruik", "Vergelijk", "Status"]
OFFLINE_LATENCY_S = float(os.environ.get("OFFLINE_LATENCY_S", "1.0"))  # a model takes time


def offline_server() -> LoopbackServer | None:
    """Without an API key, a loopback server plays the model."""
    return None if os.environ.get("OPENAI_API_KEY") else loopback()


@st.cache_resource
def loopback() -> LoopbackServer:
    """The loopback server, kept for the app's lifetime."""
    return LoopbackServer().start()


def offline_answer(begrip: str) -> str:
    """What the loopback server answers for a begrip: a known definitie or a marked example."""
    known = BEGRIPPEN.get(begrip.lower())
    if known:
        return f"{known} (offline voorbeeld, niet door een model gemaakt)"
    return f"(offline voorbeeld voor '{begrip}': geen model gevraagd, er is geen OPENAI_API_KEY)"


def generate(begrip: str) -> GenerationResult:
    """One definitie through the spec's generator, on an audited client."""
    server = offline_server()
    options = {} if server is None else {"base_url": server.base_url, "api_key": "offline-demo"}
    if server is not None:
        server.script(Reply(offline_answer(begrip), latency=OFFLINE_LATENCY_S))
    with (
        closing(DefinitionRepository(DB)) as definitions,
        AuditedOpenAI(DB, **options) as client,  # type: ignore[arg-type]
    ):
        generator = UnifiedDefinitionGenerator(client, PromptOrchestrator(), definitions)
        return generator.generate_definition({"begrip": begrip})


def plain(text: str) -> str:
    """Text shown as written: markdown's special characters escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|>~<])", r"\\\1", text)


def creation_tab() -> None:
    """The spec's creation tab: generate, save, link, report."""
    begrip = st.text_input("Begrip", key="begrip")
    # Who asks: the app would take the signed-in employee's number; here it is typed.
    actor = st.text_input("Medewerker", value="medewerker-001", key="actor")
    if not st.button("Genereer Definitie", key="generate"):
        return
    if not begrip.strip():
        st.warning("Vul eerst een begrip in.")
        return
    if not actor.strip():
        st.warning("Vul uw medewerkernummer in: elke generatie zegt wie erom vroeg.")
        return
    session = st.session_state.setdefault("sessie", f"sessie-{uuid.uuid4().hex[:12]}")
    try:
        who = audit_context(actor=actor.strip(), session=session)
    except InvalidLogError as exc:
        st.warning(f"Medewerker: {exc}")
        return
    with st.spinner(f"Definitie van '{begrip}' wordt gegenereerd…"), who as audit:
        try:
            result = generate(begrip.strip())
        except openai.APIError as exc:
            logs = ", ".join(str(i) for i in audit.log_ids) or "geen"
            st.error(
                f"Generatie mislukt ({type(exc).__name__}); de poging(en) staan in het "
                f"logboek: log {logs}."
            )
            return
    st.success(f"Definitie gegenereerd in {nl_duration(result.duration_ms)}")
    st.info(f"Tokens gebruikt: {nl_number(result.tokens_used)}")
    st.markdown(f"**{plain(begrip)}**: {plain(result.definitie)}")
    st.caption(f"definitie {result.definitie_id} · log {result.generation_log_id}")


def detail_view() -> None:
    """A definitie with its Generatie Details; ``?definitie=ID`` says which."""
    with closing(DefinitionRepository(DB)) as repository:
        definitions = repository.all()
    if not definitions:
        st.info("Nog geen definities.")
        return
    raw = st.query_params.get("definitie")
    by_id = {d.id: d for d in definitions}
    selected: int | None = None
    if raw:
        if not raw.isdigit():
            st.warning(f"'{raw}' in de link is geen definitie-id.")
        elif int(raw) not in by_id:
            st.warning(f"Definitie {raw} bestaat niet (meer).")
        else:
            selected = int(raw)
    ids = list(by_id)
    chosen = st.selectbox(
        "Definitie",
        ids,
        index=ids.index(selected) if selected is not None else None,
        format_func=lambda i: f"{i} · {by_id[i].begrip}",
        placeholder="Kies een definitie",
        key=f"definitie-{selected}",
    )
    if chosen is None:
        return
    if chosen != selected:
        st.query_params.from_dict({"definitie": str(chosen)})
        st.rerun()
    definitie = by_id[chosen]
    st.markdown(f"### {plain(definitie.begrip)}\n\n{plain(definitie.definitie)}")
    st.caption(f"Bron: {SOURCES.get(definitie.source_type, definitie.source_type)}")
    repo = GenerationLogRepository(DB)
    if repo.get_by_definitie_id(chosen) is not None:
        with st.expander("Beoordelen", expanded=False):
            # The app would take the signed-in jurist; here the name is typed.
            reviewer = st.text_input("Beoordelaar", value="jurist-001", key="reviewer")
            beoordeel(repo, chosen, reviewer=reviewer.strip() or None, text=definitie.definitie)
    show_generation_details(repo, chosen, expanded=True)
    # The key that signs dossiers: the app's own, kept away from the database (the demo's here).
    beside = Path(DB).parent if "://" not in DB else Path("data")
    key = os.environ.get("DEFINITIE_SIGNING_KEY", str(beside / "demo-signing.pem"))
    if Path(key).exists():
        dossier_button(repo, chosen, key)


def current_view() -> str:
    """The view the URL names; without one, a log or a definitie opens its own.

    An unknown view is said (at the top, where every warning of the page goes).
    """
    params = st.query_params
    view = params.get("view")
    if view in VIEWS:
        return view  # type: ignore[return-value]
    if view is not None:
        st.warning(f"Onbekende weergave '{view}' in de link; getoond wordt {VIEWS[0]}.")
        return VIEWS[0]
    if "log" in params:
        return "Logboek"
    if "definitie" in params:
        return "Definities"
    return VIEWS[0]


def switch_view() -> None:
    st.query_params.from_dict({"view": st.session_state["view"]})


def main() -> None:
    st.set_page_config(page_title="Definities", page_icon="📚", layout="wide")
    st.title("Definities")
    view = current_view()
    st.session_state["view"] = view
    st.radio("Weergave", VIEWS, key="view", horizontal=True, on_change=switch_view)
    if view == "Genereer":
        creation_tab()
    elif view == "Definities":
        detail_view()
    elif view == "Logboek":
        logboek(GenerationLogRepository(DB))
    elif view == "Tokengebruik":
        token_dashboard(GenerationLogRepository(DB))
    elif view == "Vergelijk":
        vergelijk(GenerationLogRepository(DB))
    else:
        status_panel(GenerationLogRepository(DB))


main()
