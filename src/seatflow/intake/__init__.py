"""Intake: taking a booking from a host application (`service`: create it
idempotently and start its workflow; the operator actions on it) and starting
the workflows that could not be started at once (`relay`)."""
