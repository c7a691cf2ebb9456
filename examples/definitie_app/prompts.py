"""PromptOrchestrator: the definitie prompt (about 9 KB), assembled from named modules."""

from __future__ import annotations

from dataclasses import dataclass

TEMPLATE_NAME = "unified_definition_v2"
TEMPLATE_VERSION = "2.1"
CANDIDATE_VERSION = "2.2"  # the version the demo's A/B test tries against 2.1

# 2.2's extra module: one sentence, the genus first
SHORT = """## Vorm (versie 2.2)

Schrijf de definitie in één zin die begint met het bovenbegrip (persoon, beslissing,
rechtsmiddel, ...), gevolgd door wat dit begrip van de andere soorten onderscheidt.
"""

BASE = """# DEFINITIE GENERATIE

Je bent een ervaren juridisch redacteur bij een Nederlandse overheidsorganisatie. Je
schrijft definities van begrippen uit het strafrecht en het strafprocesrecht, voor
gebruik in beleidsstukken, werkinstructies en informatiesystemen van de
strafrechtketen. Een definitie moet zelfstandig leesbaar zijn, precies afbakenen wat
wel en wat niet onder het begrip valt, en aansluiten bij de wettelijke terminologie.
Schrijf in helder, zakelijk Nederlands, zonder opsommingen, in hooguit drie zinnen.
"""

CONTEXT = """## Context

Organisatorische context: {organisatie}.
Juridische context: {juridisch}.
Wettelijke basis: {wet}.
De definitie wordt opgenomen in het begrippenkader van de keten, waarin ook verwante
begrippen staan; vermijd overlap met die begrippen en verwijs er waar nodig naar met
hun exacte naam. Neem geen voorbeelden, uitzonderingen of toelichtingen op in de
definitie zelf: die horen in de toelichting bij het begrip.
"""

EXAMPLES = """## Voorbeelden van goede definities

- **aangifte**: mededeling van een strafbaar feit aan een opsporingsambtenaar, met het
  oogmerk dat daarvan een proces-verbaal wordt opgemaakt.
- **proces-verbaal**: op ambtseed of ambtsbelofte opgemaakt schriftelijk verslag van
  een opsporingsambtenaar van wat hij heeft waargenomen of verricht.
- **dagvaarding**: schriftelijke oproeping van een verdachte om op een bepaalde tijd
  voor de rechter te verschijnen, met de omschrijving van het tenlastegelegde feit.
- **inverzekeringstelling**: vrijheidsbeneming van een verdachte voor het onderzoek,
  bevolen door een officier van justitie of hulpofficier van justitie.
- **raadsman**: advocaat die een verdachte in een strafzaak bijstaat.

## Voorbeelden van slechte definities, en waarom

- *verdachte: iemand die verdacht wordt* (cirkeldefinitie: het begrip zelf wordt
  gebruikt om het te omschrijven).
- *de getuige is een persoon die iets heeft gezien* (begint met een lidwoord en is te
  ruim: ook wie niets verklaart valt eronder).
- *schorsing: zie opheffing* (verwijzing in plaats van omschrijving).
"""

RULES = """## Regels (ASTRA)

1. Begin met het genus: de categorie waartoe het begrip behoort (persoon, handeling,
   document, beslissing, bevoegdheid, ...), zonder lidwoord.
2. Geef daarna de onderscheidende kenmerken die het begrip afbakenen van andere
   begrippen binnen hetzelfde genus.
3. Gebruik het begrip zelf niet in de definitie (geen cirkeldefinitie), ook niet in
   een afgeleide vorm.
4. Gebruik geen negatieve omschrijvingen als hoofdkenmerk ("niet zijnde ...").
5. Sluit aan bij de terminologie van de wet; noem het artikel niet in de definitie.
6. Eén begrip, één betekenis: geef geen alternatieve betekenissen.
7. Vermijd vage woorden als "bepaalde", "relevante", "passende" en "etc.".
8. Gebruik enkelvoud, tegenwoordige tijd en geen afkortingen.
9. Schrijf geen toelichting, voorbeeld of uitzondering in de definitie.
10. Controleer dat de definitie substitueerbaar is: het begrip moet in een zin door de
    definitie vervangen kunnen worden zonder dat de betekenis verandert.
11. Houd de definitie korter dan vijftig woorden.
12. Antwoord alleen met de definitie, zonder aanhalingstekens en zonder het begrip
    ervoor.
"""

RELATED = [
    ("aanhouding", "vrijheidsbeneming van een verdachte om hem voor te geleiden"),
    ("beslag", "inbeslagneming van een voorwerp ten behoeve van de strafvordering"),
    ("bewijsmiddel", "middel waaruit de rechter zijn overtuiging van de feiten mag putten"),
    ("dwangmiddel", "bevoegdheid die inbreuk maakt op een grondrecht van een betrokkene"),
    ("gerechtelijk vooronderzoek", "onderzoek onder leiding van de rechter-commissaris"),
    ("hulpofficier van justitie", "opsporingsambtenaar met bevoegdheden van de officier"),
    ("inzage in stukken", "kennisneming door de verdachte van de processtukken"),
    ("kennisgeving van niet-verdere vervolging", "mededeling dat de vervolging eindigt"),
    ("onderzoek ter terechtzitting", "behandeling van de zaak door de rechter in het openbaar"),
    ("opsporing", "onderzoek naar strafbare feiten onder gezag van de officier van justitie"),
    ("opsporingsambtenaar", "ambtenaar die bij wet met de opsporing is belast"),
    ("proces-verbaal", "schriftelijk verslag van een opsporingsambtenaar op ambtseed"),
    ("rechter-commissaris", "rechter belast met de behandeling van strafzaken voor de zitting"),
    ("requisitoir", "betoog van de officier van justitie ter terechtzitting"),
    ("strafbeschikking", "beslissing van het openbaar ministerie die een straf oplegt"),
    ("tenlastelegging", "omschrijving van het feit waarvoor de verdachte terechtstaat"),
    ("transactie", "voorwaarde waarmee vervolging wordt voorkomen"),
    ("verhoor", "ondervraging van een verdachte of getuige"),
    ("voorgeleiding", "het brengen van een verdachte voor een officier of hulpofficier"),
    ("vonnis", "einduitspraak van de rechtbank of de kantonrechter"),
    ("vordering", "verzoek van de officier van justitie aan de rechter"),
    ("wederrechtelijk verkregen voordeel", "voordeel uit een strafbaar feit"),
    ("zittingsplan", "planning van de behandeling van een zaak ter terechtzitting"),
    ("benadeelde partij", "persoon die schade lijdt door een strafbaar feit en zich voegt"),
    ("slachtoffer", "persoon die als gevolg van een strafbaar feit schade ondervindt"),
    ("schorsing", "opheffing van de tenuitvoerlegging onder voorwaarden"),
    ("voorlopige hechtenis", "vrijheidsbeneming van een verdachte voor de uitspraak"),
    ("taakstraf", "straf die bestaat uit onbetaalde arbeid of een leerproject"),
    ("geldboete", "straf die bestaat uit de verplichting een geldsom te betalen"),
    ("maatregel", "sanctie die primair de beveiliging van de maatschappij dient"),
]

RELATED_MODULE = (
    "## Verwante begrippen in het begrippenkader\n\n"
    + "\n".join(
        f"- **{term}** (vastgesteld): {meaning}; zie het begrippenkader voor de volledige "
        "definitie, de bron en de toelichting."
        for term, meaning in RELATED
    )
    + "\n"
)

VALIDATION = """## Zelfcontrole

Controleer voordat je antwoordt elk van de regels hierboven. Past de definitie op alle
gevallen die de wet onder het begrip brengt, en op geen enkel ander geval? Zou een
jurist uit de keten de definitie onderschrijven? Is zij begrijpelijk voor een
medewerker zonder juridische opleiding? Pas de definitie aan tot het antwoord op elke
vraag ja is.
"""


@dataclass(frozen=True)
class BuiltPrompt:
    """A prompt and what went into it."""

    complete_prompt: str
    modules_used: list[str]
    template_name: str = TEMPLATE_NAME
    template_version: str = TEMPLATE_VERSION


class PromptOrchestrator:
    """Assembles the prompt from base, context, related, examples, rules and validation."""

    def build_prompt(self, input_data: dict[str, str]) -> BuiltPrompt:
        """Build the prompt for one begrip; the result reports the modules used."""
        modules = {
            "base": BASE,
            "context": CONTEXT.format(
                organisatie=input_data.get("organisatie", "Openbaar Ministerie"),
                juridisch=input_data.get("juridisch", "strafprocesrecht"),
                wet=input_data.get("wet", "Wetboek van Strafvordering"),
            ),
            "related": RELATED_MODULE,
            "examples": EXAMPLES,
            "rules": RULES,
            "validation": VALIDATION,
        }
        version = input_data.get("template_version", TEMPLATE_VERSION)
        if version == CANDIDATE_VERSION:
            modules["short"] = SHORT
        begrip = input_data["begrip"]
        text = "\n".join(modules.values()) + f"\n## Opdracht\n\nBegrip: {begrip}\n"
        return BuiltPrompt(
            complete_prompt=text, modules_used=list(modules), template_version=version
        )
