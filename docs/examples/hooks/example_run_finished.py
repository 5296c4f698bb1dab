from sharetui import hookimpl

PLUGIN_NAME = "example-run-stats"

STATUSES = {}  # status -> how many runs finished so


@hookimpl
def sharetui_automation_run_finished(run):
    STATUSES[run["status"]] = STATUSES.get(run["status"], 0) + 1
