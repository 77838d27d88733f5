"""Synthetic SUN-ES traffic for demos, tests and benchmarks (see `simulator.generator`)."""

from simulator.config import Behaviour, Messiness, SimulationConfig
from simulator.generator import generate
from simulator.message import SimulatedMessage

__all__ = ["Behaviour", "Messiness", "SimulatedMessage", "SimulationConfig", "generate"]
