"""The headless domain: sharing, access, expiry, history. Never imports Textual."""
