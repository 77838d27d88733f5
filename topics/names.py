"""Topic names and partition counts: the one place they are declared.

The contract's names are the defaults; a deployment (or a test) may carry its own names in a
`TopicNames` value: the worker, `sunes publish` and `sunes simulate` take theirs from
--topic-prefix / SUNES_TOPIC_PREFIX, so that several pipelines share one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    # Raw invalid input (personal data): kept a bounded time, not the retention horizon
    # (streams/topic_configs.py).
    dead_letters: bool = False


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
    DEADLETTER, 1, False, "invalid input: original bytes, reason, source position", True
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


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The topics one pipeline reads and writes; the contract's names by default."""

    stays: str = STAYS
    dmp: str = DMP
    mss: str = MSS
    establishments: str = ESTABLISHMENTS
    deadletter: str = DEADLETTER

    @classmethod
    def prefixed(cls, prefix: str) -> TopicNames:
        """Every contract name behind one prefix ("ght-a." → "ght-a.sunes.stays.v1")."""
        return cls(*(prefix + name for name in (STAYS, DMP, MSS, ESTABLISHMENTS, DEADLETTER)))

    @property
    def inputs(self) -> tuple[str, ...]:
        """What the worker's ingest stage reads: the three event topics and the registry."""
        return (self.stays, self.dmp, self.mss, self.establishments)

    def of_type(self, record_type: str) -> str:
        """The topic a record type is published to, or KeyError for an unknown type."""
        return self.named(TOPIC_OF_TYPE[record_type])

    def specs(self) -> tuple[TopicSpec, ...]:
        """ALL_TOPICS under these names (partitions and compaction of the contract)."""
        return tuple(replace(spec, name=self.named(spec.name)) for spec in ALL_TOPICS)

    def input_specs(self) -> tuple[TopicSpec, ...]:
        return tuple(spec for spec in self.specs() if spec.name in self.inputs)

    def named(self, name: str) -> str:
        """This pipeline's name of a contract topic ("sunes.stays.v1" → its stays topic)."""
        return {
            STAYS: self.stays,
            DMP: self.dmp,
            MSS: self.mss,
            ESTABLISHMENTS: self.establishments,
            DEADLETTER: self.deadletter,
        }[name]


CONTRACT_TOPICS = TopicNames()
