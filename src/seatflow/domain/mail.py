"""How the email step retries (pure constants; imported by workflow code).

The email activity bounds itself: after `Settings.mail_max_attempts` real
delivery attempts that failed transiently it records `email.failed` and
returns, so the workflow's retry policy may stay unlimited (a database outage
while recording must still be retried). `EMAIL_RETRY` spaces those attempts
for an outside system that may be down for minutes: 1 s doubling to 2 min
(20 attempts span about half an hour), instead of the database steps' 10 s cap.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

EMAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=0,  # unlimited: the activity gives up by itself, with a record
    non_retryable_error_types=["BookingNotFound", "IllegalTransition"],
)
EMAIL_TIMEOUT = timedelta(seconds=30)
# A claim older than this is taken to be from a dead attempt and sent again.
EMAIL_CLAIM_LEASE = timedelta(seconds=90)
