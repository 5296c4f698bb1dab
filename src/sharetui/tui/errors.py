"""Worker failures become something a person reads, never a traceback.

``Worker.StateChanged`` does not bubble, so every widget or screen that runs
workers mixes this in; the app decides how to show the error.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState


class ReportsWorkerErrors:
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.app.show_worker_error(event.worker.error)  # type: ignore[attr-defined]
