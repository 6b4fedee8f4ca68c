"""Restaurants and their floor plans: import one, list them, read one back.

A floor-plan file is parsed and validated by `seatflow.floorplan` before it
gets here; importing it creates or updates the restaurant all or nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.floorplan import FloorPlan
from seatflow.storage import floorplans
from seatflow.storage.floorplans import ImportSummary, RestaurantListing


class RestaurantNotFound(LookupError):
    """No restaurant has this id."""

    def __init__(self, restaurant_id: str):
        super().__init__(f"restaurant {restaurant_id!r} not found")
        self.restaurant_id = restaurant_id


async def import_restaurant(engine: AsyncEngine, plan: FloorPlan) -> ImportSummary:
    """Create or update the plan's restaurant, its services, zones, tables and
    adjacency in one transaction; tables and zones the plan no longer names are
    deactivated, never deleted (bookings keep pointing at them)."""
    return await floorplans.import_floorplan(engine, plan)


async def list_restaurants(engine: AsyncEngine) -> list[RestaurantListing]:
    """Every restaurant with its zones, active tables and capacity, by id."""
    return await floorplans.list_restaurants(engine)


async def restaurant_floorplan(engine: AsyncEngine, restaurant_id: str) -> FloorPlan:
    """The stored restaurant as a floor plan, ready to show or to edit and
    re-import (inactive tables and zones included). Raises RestaurantNotFound."""
    plan = await floorplans.export_floorplan(engine, restaurant_id)
    if plan is None:
        raise RestaurantNotFound(restaurant_id)
    return plan
