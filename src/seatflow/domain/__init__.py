"""Pure domain: states, policies and models. Nothing here does I/O."""
