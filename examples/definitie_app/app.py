"""The definitie app in Streamlit: a creation tab that generates and links, a detail view.

    streamlit run examples/definitie_app/app.py

Reads OPENAI_API_KEY / OPENAI_BASE_URL like generate.py; without a key, a loopback
server plays the model. ``DEFINITIE_DB`` chooses the database (data/definities.db);
``?definitie=ID`` in the URL opens that definitie's details.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import openai
import streamlit as st

sys.path.insert(0, str(Path(__file__).parent))

from definities import DefinitionRepository
from generator import UnifiedDefinitionGenerator
from prompts import PromptOrchestrator

from audited_openai import AuditedOpenAI, GenerationLogRepository
from audited_openai.streamlit import show_generation_details, token_dashboard
from audited_openai.testing import LoopbackServer

DB = os.environ.get("DEFINITIE_DB", "data/definities.db")


@st.cache_resource
def model_options() -> dict[str, str]:
    """The API from the environment, or a loopback server kept for the session."""
    if os.environ.get("OPENAI_API_KEY"):
        return {}
    server = LoopbackServer().start()
    return {"base_url": server.base_url, "api_key": "offline-demo"}


def generator() -> UnifiedDefinitionGenerator:
    definitions = DefinitionRepository(DB)
    client = AuditedOpenAI(DB, **model_options())  # type: ignore[arg-type]
    return UnifiedDefinitionGenerator(client, PromptOrchestrator(), definitions)


def creation_tab() -> None:
    """The spec's creation tab: generate, save, link, report."""
    begrip = st.text_input("Begrip", key="begrip")
    if st.button("Genereer Definitie", key="generate") and begrip:
        try:
            result = generator().generate_definition({"begrip": begrip})
        except openai.APIError as exc:
            st.error(f"Generatie mislukt ({type(exc).__name__}); de poging staat in het logboek.")
            return
        st.success(f"Definitie gegenereerd in {result.duration_ms}ms")
        st.info(f"Tokens gebruikt: {result.tokens_used}")
        st.write(f"**{begrip}**: {result.definitie}")
        st.caption(f"definitie {result.definitie_id} · log {result.generation_log_id}")


def detail_view(selected: int | None) -> None:
    """A definitie with its Generatie Details."""
    definitions = DefinitionRepository(DB).all()
    if not definitions:
        st.info("Nog geen definities.")
        return
    ids = [d.id for d in definitions]
    index = ids.index(selected) if selected in ids else len(ids) - 1
    chosen = st.selectbox(
        "Definitie", definitions, index=index, format_func=lambda d: f"{d.id} · {d.begrip}"
    )
    st.markdown(f"### {chosen.begrip}\n\n{chosen.definitie}")
    show_generation_details(GenerationLogRepository(DB), chosen.id, expanded=selected is not None)


def main() -> None:
    st.set_page_config(page_title="Definities", page_icon="📚")
    st.title("Definities")
    selected = st.query_params.get("definitie")
    chosen = int(selected) if selected and selected.isdigit() else None
    if chosen is not None:
        detail_view(chosen)
        return
    create, details, dashboard = st.tabs(["Genereer", "Definities", "Tokengebruik"])
    with create:
        creation_tab()
    with details:
        detail_view(None)
    with dashboard:
        token_dashboard(GenerationLogRepository(DB))


main()
