"""Search attributes the booking workflow keeps current (README, Operating it).

No guest name or email ever goes here: Temporal stores these unencrypted.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

ASSIGNMENT_STATE = SearchAttributeKey.for_keyword("AssignmentState")
RESTAURANT_ID = SearchAttributeKey.for_keyword("RestaurantId")
ASSIGNMENT_ATTEMPTS = SearchAttributeKey.for_int("AssignmentAttempts")
ASSIGNMENT_PIPELINE = SearchAttributeKey.for_keyword("AssignmentPipeline")

ALL = (ASSIGNMENT_STATE, RESTAURANT_ID, ASSIGNMENT_ATTEMPTS, ASSIGNMENT_PIPELINE)
# name -> type, as `temporal server start-dev --search-attribute NAME=TYPE` takes them
REGISTRATION = {
    "AssignmentState": "Keyword",
    "RestaurantId": "Keyword",
    "AssignmentAttempts": "Int",
    "AssignmentPipeline": "Keyword",
}
