"""Synthetic establishments: FINESS numbers, legal entities, regions, windows and maturity."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from processors.calendar import load_calendar
from simulator.config import SimulationConfig
from topics.records import EstablishmentRecord

# (region code, [(department, city)]): real departments, so FINESS numbers look right.
REGIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("IDF", (("75", "Paris"), ("94", "Créteil"), ("78", "Versailles"), ("92", "Nanterre"))),
    ("BFC", (("21", "Dijon"), ("25", "Besançon"), ("71", "Chalon-sur-Saône"))),
    ("ARA", (("69", "Lyon"), ("38", "Grenoble"), ("63", "Clermont-Ferrand"))),
    ("HDF", (("59", "Lille"), ("80", "Amiens"))),
    ("NAQ", (("33", "Bordeaux"), ("87", "Limoges"))),
    ("OCC", (("31", "Toulouse"), ("34", "Montpellier"))),
    ("PAC", (("13", "Marseille"), ("06", "Nice"))),
    ("GES", (("67", "Strasbourg"), ("51", "Reims"))),
)
NAME_PATTERNS = (
    "Centre hospitalier de {city}",
    "CHU de {city}",
    "Clinique Saint-Joseph de {city}",
    "Hôpital privé de {city}",
    "Clinique du Parc de {city}",
    "Centre hospitalier intercommunal de {city}",
)
ESTABLISHMENTS_PER_EJ = 3  # a legal entity (a GHT member, a private group) runs up to three


@dataclass(frozen=True, slots=True)
class EstablishmentProfile:
    record: EstablishmentRecord
    maturity: float  # scales every send/deposit probability; 1.0 ~ on target
    origin: date  # the establishment's day 0
    utc_timestamps: bool  # its integration engine writes UTC offsets rather than Paris ones


def luhn_key(digits: str) -> str:
    """The Luhn check digit FINESS numbers end with."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def finess_number(department: str, rng: random.Random, taken: set[str]) -> str:
    while True:
        body = department + f"{rng.randrange(10**6):06d}"
        number = body + luhn_key(body)
        if number not in taken:
            taken.add(number)
            return number


def build_profiles(config: SimulationConfig, rng: random.Random) -> list[EstablishmentProfile]:
    calendar = load_calendar()
    taken: set[str] = set()
    profiles = []
    region = REGIONS[0]
    ej = ""
    for index in range(config.establishments):
        if index % ESTABLISHMENTS_PER_EJ == 0:
            region = REGIONS[(index // ESTABLISHMENTS_PER_EJ) % len(REGIONS)]
            ej = finess_number(region[1][0][0], rng, taken)
        department, city = rng.choice(region[1])
        window = config.window_of(index)
        postponed = window == "F1" and index % 2 == 1  # some F1 establishments asked for it
        maturity = config.maturity_of(index, rng.uniform(0.85, 1.15))
        record = EstablishmentRecord(
            type=EstablishmentRecord.TYPE,
            finess=finess_number(department, rng, taken),
            name=rng.choice(NAME_PATTERNS).format(city=city),
            finess_ej=ej,
            region=region[0],
            window=window,
            postponed=postponed,
            # Mixed on purpose: DS 2.1 / 3.1 rows exist only where there is a lab / imaging.
            has_lab=index % 3 != 2,
            has_imaging=index % 4 != 3,
            cme_presentation=maturity >= 1.0,
        )
        origin = config.start or calendar.window_for(window, postponed).start
        profiles.append(EstablishmentProfile(record, maturity, origin, rng.random() < 0.25))
    return profiles
