"""Worker failures become something a person reads, never a traceback.

``Worker.StateChanged`` does not bubble, so every widget or screen that runs
workers mixes this in; the app decides how to show the error.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState

from sharetui.tui.base import InApp, UsesApp, tui_app


class ReportsWorkerErrors(UsesApp):
    def on_worker_state_changed(self: InApp, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            tui_app(self).show_worker_error(event.worker.error)
