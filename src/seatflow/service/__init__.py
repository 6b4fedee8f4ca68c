"""The use cases: every front door (API, CLI) calls these functions."""
