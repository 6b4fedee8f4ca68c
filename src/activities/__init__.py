"""Temporal activities: thin adapters from the workflow to seatflow's storage,
engine and mail. Each activity does one thing and says so in its name."""
