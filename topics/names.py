"""Topic names and partition counts: the one place they are declared."""

from __future__ import annotations

from dataclasses import dataclass

STAYS = "sunes.stays.v1"
DMP = "sunes.dmp.v1"
MSS = "sunes.mss.v1"
ESTABLISHMENTS = "sunes.establishments.v1"
DEADLETTER = "sunes.deadletter.v1"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool
    description: str


INPUT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(STAYS, 6, False, "stay.discharged, stay.discharge_cancelled"),
    TopicSpec(
        DMP,
        6,
        False,
        "document.produced, document.deposited, document.deposit_failed, document.deleted",
    ),
    TopicSpec(MSS, 6, False, "mss.sent"),
    TopicSpec(ESTABLISHMENTS, 1, True, "establishment registry, key = FINESS"),
)
DEADLETTER_TOPIC = TopicSpec(
    DEADLETTER, 1, False, "invalid input: original bytes, reason, source position"
)
ALL_TOPICS: tuple[TopicSpec, ...] = (*INPUT_TOPICS, DEADLETTER_TOPIC)

# The topic each record type is published to (`sunes publish` routes with it).
TOPIC_OF_TYPE: dict[str, str] = {
    "stay.discharged": STAYS,
    "stay.discharge_cancelled": STAYS,
    "document.produced": DMP,
    "document.deposited": DMP,
    "document.deposit_failed": DMP,
    "document.deleted": DMP,
    "mss.sent": MSS,
    "establishment": ESTABLISHMENTS,
}
