"""Search attributes the booking workflow keeps current (README, Operating it),
defined once: the workflow upserts them, intake sets the first values at start,
the dev stack and the deployment register them, operators filter on them.

No guest name or email ever goes here: Temporal stores these unencrypted.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

ASSIGNMENT_STATE = SearchAttributeKey.for_keyword("AssignmentState")
RESTAURANT_ID = SearchAttributeKey.for_keyword("RestaurantId")
ASSIGNMENT_ATTEMPTS = SearchAttributeKey.for_int("AssignmentAttempts")
ASSIGNMENT_PIPELINE = SearchAttributeKey.for_keyword("AssignmentPipeline")

ALL = (ASSIGNMENT_STATE, RESTAURANT_ID, ASSIGNMENT_ATTEMPTS, ASSIGNMENT_PIPELINE)

_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
}
# name -> type, as `temporal server start-dev --search-attribute NAME=TYPE` takes them
REGISTRATION: dict[str, str] = {key.name: _TYPE_NAMES[key.indexed_value_type] for key in ALL}
