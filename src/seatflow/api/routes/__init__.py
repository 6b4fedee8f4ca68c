"""One router per resource: bookings, availability, the review queue, health."""
