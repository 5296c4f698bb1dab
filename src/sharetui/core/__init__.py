"""The domain services, headless: access, sharing, records, history, events and
automations. Never imports Textual, click, ``ops`` or ``default_plugins``."""
