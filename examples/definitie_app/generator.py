"""UnifiedDefinitionGenerator: the spec's service layer, on an audited client.

The one change against the app before auditing: the client is an ``AuditedOpenAI``
and the call runs inside ``audit_context``. The prompt, parameters, usage and outcome
of every attempt land in ``generation_logs`` without code of the generator's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from audited_openai import AuditedOpenAI, audit_context

if TYPE_CHECKING:
    from definities import DefinitionRepository
    from prompts import PromptOrchestrator


@dataclass(frozen=True)
class GenerationResult:
    """What generate_definition returns (the spec's dictionary, typed)."""

    definitie: str
    generation_log_id: int
    tokens_used: int | None
    duration_ms: int | None
    definitie_id: int | None = None


class UnifiedDefinitionGenerator:
    """Builds the prompt, calls the model, saves the definitie and links its log."""

    def __init__(
        self,
        client: AuditedOpenAI,
        prompt_orchestrator: PromptOrchestrator,
        definitions: DefinitionRepository,
        *,
        model: str = "gpt-4o-mini",
        temperature: float = 0.3,
        max_tokens: int = 300,
    ) -> None:
        """Wire the generator; the audit trail lives in the client's store."""
        self.client = client
        self.prompts = prompt_orchestrator
        self.definitions = definitions
        self.logs = client.audit_store
        self.logs.refresh_host_objects()  # views, and erasure with the definitie
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens

    def generate_definition(self, input_data: dict[str, str]) -> GenerationResult:
        """Generate, save and link one definitie; API errors propagate unchanged."""
        built = self.prompts.build_prompt(input_data)
        with audit_context(
            template_name=built.template_name,
            template_version=built.template_version,
            modules_used=built.modules_used,
            metadata={"begrip": input_data["begrip"]},
        ) as audit:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": built.complete_prompt}],
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        text = (response.choices[0].message.content or "").strip()
        definitie_id = self.definitions.save_definitie(
            {
                "begrip": input_data["begrip"],
                "definitie": text,
                "source_type": "generated",
                "organisatie": input_data.get("organisatie", ""),
            }
        )
        audit.link(definitie_id)
        log_id = audit.last_log_id
        assert log_id is not None
        log = self.logs.get(log_id)
        return GenerationResult(
            definitie=text,
            generation_log_id=log_id,
            tokens_used=log.response.tokens_total if log.response else None,
            duration_ms=log.response.duration_ms if log.response else None,
            definitie_id=definitie_id,
        )
