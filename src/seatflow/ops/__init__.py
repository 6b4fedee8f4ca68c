"""The operations tools: the local dev stack, the demo, the load test, the
report, the shadow report and the worker's telemetry. They sit on top of
domain, storage and the Temporal client; nothing in the core imports them."""
