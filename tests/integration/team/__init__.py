"""Team-mode tests (PostgreSQL only): a package, so its conftest is not the suite's."""
