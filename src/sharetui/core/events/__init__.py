"""Events: the outbox every change writes to, after-commit dispatch, and the worker."""
