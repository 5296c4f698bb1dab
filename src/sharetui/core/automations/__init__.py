"""Automations: definitions, the engine that runs them, and schedules."""

from sharetui.core.automations.engine import (
    AutomationService,
    RunReport,
    automation_dict,
    run_dict,
    trigger_for,
)

__all__ = ["AutomationService", "RunReport", "automation_dict", "run_dict", "trigger_for"]
