"""The SUN-ES indicator catalogue: DS 1.1 to DS 4.3, with the instruction's labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Indicator:
    id: str  # "DS1.1": the label value in metrics and reports
    label: str  # libellé SEGUR, as in the DGOS instruction
    short_label: str
    type_code: str | None  # LOINC XDS typeCode of the document, where there is one
    unit: str  # what the rate counts
    bonus: bool = False


DISCHARGE_LETTER: Final = "11490-0"
DISCHARGE_PRESCRIPTION: Final = "57833-6"
OPERATIVE_REPORT: Final = "34874-8"
BIOLOGY_REPORT: Final = "11502-2"
IMAGING_REPORT: Final = "18748-4"

CATALOGUE: Final[tuple[Indicator, ...]] = (
    Indicator(
        "DS1.1",
        "Taux de séjours pour lesquels le DMP a été alimenté d'une lettre de liaison au format "
        "CDA-R2 niveau 1 et comprenant une INS qualifiée",
        "Lettre de liaison à la sortie",
        DISCHARGE_LETTER,
        "séjour",
    ),
    Indicator(
        "DS1.2",
        "Taux de séjours pour lesquels le DMP a été alimenté d'au moins une ordonnance de sortie "
        "au format CDA-R2 niveau 1 et comprenant une INS qualifiée",
        "Ordonnance de sortie",
        DISCHARGE_PRESCRIPTION,
        "séjour",
    ),
    Indicator(
        "DS1.3",
        "Taux de séjours pour lesquels le DMP a été alimenté d'un compte-rendu opératoire au "
        "format CDA-R2 niveau 1 comprenant une INS qualifiée",
        "Compte rendu opératoire",
        OPERATIVE_REPORT,
        "séjour chirurgical",
        bonus=True,
    ),
    Indicator(
        "DS1.4",
        "Parmi les patients déjà venus, taux de séjours pour lesquels au moins un document "
        "datant d'un ancien séjour a fait l'objet d'une alimentation au DMP, avec une INS "
        "qualifiée",
        "Historique des patients déjà venus",
        None,
        "séjour de patient déjà venu",
        bonus=True,
    ),
    Indicator(
        "DS2.1",
        "Taux de CR de biologie médicale structurés au format CDA-R2 niveau 1 ou CDA-R2 niveau 3 "
        "transmis au DMP, avec une INS qualifiée",
        "CR de biologie médicale",
        BIOLOGY_REPORT,
        "compte rendu",
    ),
    Indicator(
        "DS3.1",
        "Taux de CR d'imagerie structurés au format CDA-R2 niveau 1 transmis au DMP avec une INS "
        "qualifiée",
        "CR d'imagerie médicale",
        IMAGING_REPORT,
        "compte rendu",
    ),
    Indicator(
        "DS4.1",
        "Taux de correspondants équipés d'une messagerie sécurisée professionnelle auxquels des "
        "documents de santé référencés avec une INS qualifiée et structurés au format CDA-R2 ont "
        "été transmis",
        "Correspondants MSS Pro",
        None,
        "correspondant (RPPS)",
    ),
    Indicator(
        "DS4.2",
        "Taux de séjours pour lesquels un message a été envoyé au patient par la MSS citoyenne "
        "(avec ou sans pièce jointe)",
        "Message MSS citoyenne au patient",
        None,
        "séjour",
    ),
    Indicator(
        "DS4.3",
        "Présentation par l'établissement des fonctionnalités de la messagerie sécurisée de "
        "santé citoyenne en CME (ou instance équivalente dans les GHT et les établissements "
        "privés) ainsi que les cas d'usage pressentis",
        "Présentation MSS citoyenne en CME",
        None,
        "déclaration oui/non",
    ),
)

BY_ID: Final[dict[str, Indicator]] = {indicator.id: indicator for indicator in CATALOGUE}

# The indicators computed as rates (DS 4.3 is a declaration, not a rate).
RATE_INDICATORS: Final[tuple[str, ...]] = tuple(i.id for i in CATALOGUE if i.id != "DS4.3")

# DS 1.1–1.3: a stay counts with one qualifying document of this type.
STAY_DOCUMENT_INDICATORS: Final[dict[str, str]] = {
    "DS1.1": DISCHARGE_LETTER,
    "DS1.2": DISCHARGE_PRESCRIPTION,
    "DS1.3": OPERATIVE_REPORT,
}
# DS 2.1 / 3.1: the unit is the report itself.
REPORT_INDICATORS: Final[dict[str, str]] = {BIOLOGY_REPORT: "DS2.1", IMAGING_REPORT: "DS3.1"}
# DS 1.4: a deposit of any of the five document types brings history to the DMP.
HISTORY_TYPE_CODES: Final = frozenset(
    {DISCHARGE_LETTER, DISCHARGE_PRESCRIPTION, OPERATIVE_REPORT, BIOLOGY_REPORT, IMAGING_REPORT}
)
