"""Workflow scenarios: YAML tests of a workspace's flows, run by ``routecard test``."""

from .model import Scenario
from .run import Outcome, read_scenarios, run_scenario, run_scenarios

__all__ = ["Outcome", "Scenario", "read_scenarios", "run_scenario", "run_scenarios"]
