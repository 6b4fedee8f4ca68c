"""One router per resource: bookings, availability, the review queue, the day's
timeline, health, and the host page (`/host/{restaurant}`, not in the OpenAPI
document)."""
