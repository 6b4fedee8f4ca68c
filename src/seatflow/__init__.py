"""seatflow: assigns restaurant bookings to tables with durable Temporal workflows."""

__version__ = "0.1.0"
