"""Automations: definitions, the engine that runs them, and schedules."""

from sharetui.core.automations.reports import RunReport, automation_dict, run_dict, runs_not_shown
from sharetui.core.automations.service import AutomationService
from sharetui.core.automations.trigger_data import trigger_for

__all__ = ["AutomationService", "RunReport", "automation_dict", "run_dict", "runs_not_shown", "trigger_for"]
