"""Data tools over the core: the company generator, lead imports, the sample-data
loader, backup and restore, and the demo stories."""
