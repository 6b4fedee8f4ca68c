"""Initial schema: floor plans, bookings, allocations with the exclusion
constraint, state history, attempts, events, outboxes, permits, breaker.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _run_script(sql: str) -> None:
    # asyncpg prepares each statement, so a script runs one statement at a time.
    for statement in sql.split(";\n"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run_script(
        """
        CREATE TABLE restaurants (
            id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]*$'),
            name text NOT NULL,
            timezone text NOT NULL,
            buffer_minutes integer NOT NULL DEFAULT 5 CHECK (buffer_minutes >= 0),
            total_capacity integer NOT NULL DEFAULT 0 CHECK (total_capacity >= 0),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE restaurant_services (
            id serial PRIMARY KEY,
            restaurant_id text NOT NULL REFERENCES restaurants(id) ON DELETE CASCADE,
            name text NOT NULL,
            start_time time NOT NULL,
            end_time time NOT NULL,
            UNIQUE (restaurant_id, name)
        );
        CREATE TABLE service_turn_times (
            id serial PRIMARY KEY,
            service_id integer NOT NULL REFERENCES restaurant_services(id) ON DELETE CASCADE,
            max_party integer CHECK (max_party IS NULL OR max_party >= 1),
            minutes integer NOT NULL CHECK (minutes > 0)
        );
        CREATE TABLE zones (
            restaurant_id text NOT NULL REFERENCES restaurants(id) ON DELETE CASCADE,
            id text NOT NULL,
            name text NOT NULL,
            active boolean NOT NULL DEFAULT true,
            PRIMARY KEY (restaurant_id, id)
        );
        CREATE TABLE dining_tables (
            id serial PRIMARY KEY,
            restaurant_id text NOT NULL REFERENCES restaurants(id) ON DELETE CASCADE,
            code text NOT NULL,
            capacity integer NOT NULL CHECK (capacity > 0),
            min_party integer NOT NULL DEFAULT 1 CHECK (min_party >= 1),
            max_party integer CHECK (max_party IS NULL OR max_party >= min_party),
            zone_id text NOT NULL,
            mobility text NOT NULL DEFAULT 'movable' CHECK (mobility IN ('movable', 'fixed')),
            category text NOT NULL DEFAULT 'dining'
                CHECK (category IN ('dining', 'bar', 'patio', 'lounge', 'private')),
            active boolean NOT NULL DEFAULT true,
            status text NOT NULL DEFAULT 'available'
                CHECK (status IN ('available', 'out_of_service')),
            UNIQUE (restaurant_id, code),
            FOREIGN KEY (restaurant_id, zone_id) REFERENCES zones(restaurant_id, id)
        );
        CREATE TABLE table_adjacency (
            restaurant_id text NOT NULL REFERENCES restaurants(id) ON DELETE CASCADE,
            table_a integer NOT NULL REFERENCES dining_tables(id) ON DELETE CASCADE,
            table_b integer NOT NULL REFERENCES dining_tables(id) ON DELETE CASCADE,
            PRIMARY KEY (table_a, table_b),
            CHECK (table_a < table_b)
        );
        CREATE TABLE bookings (
            id uuid PRIMARY KEY,
            restaurant_id text NOT NULL REFERENCES restaurants(id),
            party_size integer NOT NULL,
            start_at timestamptz NOT NULL,
            end_at timestamptz NOT NULL,
            occupied_until timestamptz NOT NULL,
            zone_preference text,
            guest_name text,
            guest_email text,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'confirmed', 'cancelled')),
            assignment_state text NOT NULL DEFAULT 'created' CHECK (assignment_state IN (
                'created', 'capacity_verified', 'assignment_pending', 'assignment_in_progress',
                'assigned', 'confirmed', 'manual_review', 'failed', 'cancelled')),
            assignment_state_version integer NOT NULL DEFAULT 0,
            assignment_strategy text,
            assignment_pipeline text,
            last_reason text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            confirmed_at timestamptz,
            settled_at timestamptz,
            CHECK (end_at > start_at AND occupied_until >= end_at)
        );
        CREATE INDEX bookings_restaurant_start ON bookings (restaurant_id, start_at);
        CREATE INDEX bookings_state ON bookings (assignment_state);
        CREATE INDEX bookings_created ON bookings (created_at);

        -- The double-booking guard. pgserver's PostgreSQL has no btree_gist, so
        -- the integer table key becomes a one-point range: core range types
        -- need no extension. Windows are half-open [start, end + buffer).
        CREATE TABLE allocations (
            id bigserial PRIMARY KEY,
            booking_id uuid NOT NULL REFERENCES bookings(id) ON DELETE CASCADE,
            restaurant_id text NOT NULL,
            table_id integer NOT NULL REFERENCES dining_tables(id),
            occupied tstzrange NOT NULL CHECK (NOT isempty(occupied)),
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT allocations_no_double_booking EXCLUDE USING gist (
                int4range(table_id, table_id, '[]') WITH &&,
                occupied WITH &&
            )
        );
        CREATE INDEX allocations_booking ON allocations (booking_id);
        CREATE INDEX allocations_restaurant ON allocations (restaurant_id);

        CREATE TABLE booking_assignment_state_history (
            id bigserial PRIMARY KEY,
            booking_id uuid NOT NULL REFERENCES bookings(id) ON DELETE CASCADE,
            from_state text,
            to_state text NOT NULL,
            version integer NOT NULL,
            reason text,
            actor text,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE INDEX state_history_booking ON booking_assignment_state_history (booking_id, id);

        CREATE TABLE booking_assignment_attempts (
            id bigserial PRIMARY KEY,
            booking_id uuid NOT NULL REFERENCES bookings(id) ON DELETE CASCADE,
            attempt_no integer NOT NULL,
            pipeline text NOT NULL DEFAULT 'v3',
            strategy text,
            result text NOT NULL,
            reason text,
            plans_tried jsonb NOT NULL DEFAULT '[]'::jsonb,
            permit_wait_ms double precision,
            started_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            UNIQUE (booking_id, pipeline, attempt_no)
        );

        CREATE TABLE observability_events (
            id bigserial PRIMARY KEY,
            booking_id uuid,
            restaurant_id text,
            source text NOT NULL,
            event_type text NOT NULL,
            context jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE INDEX observability_events_type ON observability_events (event_type, created_at);
        CREATE INDEX observability_events_booking ON observability_events (booking_id);

        CREATE TABLE state_event_outbox (
            id bigserial PRIMARY KEY,
            booking_id uuid NOT NULL,
            topic text NOT NULL,
            dedupe_key text NOT NULL UNIQUE,
            payload jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            published_at timestamptz
        );

        CREATE TABLE email_outbox (
            id bigserial PRIMARY KEY,
            booking_id uuid NOT NULL REFERENCES bookings(id) ON DELETE CASCADE,
            kind text NOT NULL,
            recipient text,
            subject text NOT NULL,
            body text NOT NULL,
            status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
            send_attempts integer NOT NULL DEFAULT 0,
            duplicates_suppressed integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            sent_at timestamptz,
            UNIQUE (booking_id, kind)
        );

        CREATE TABLE restaurant_permits (
            restaurant_id text NOT NULL,
            slot integer NOT NULL,
            holder text,
            booking_id uuid,
            acquired_at timestamptz,
            lease_until timestamptz,
            PRIMARY KEY (restaurant_id, slot)
        );
        CREATE TABLE permit_intervals (
            id bigserial PRIMARY KEY,
            restaurant_id text NOT NULL,
            booking_id uuid NOT NULL,
            slot integer NOT NULL,
            acquired_at timestamptz NOT NULL,
            released_at timestamptz,
            wait_ms double precision NOT NULL DEFAULT 0
        );
        CREATE INDEX permit_intervals_restaurant ON permit_intervals (restaurant_id, acquired_at);

        CREATE TABLE intake_outbox (
            booking_id uuid PRIMARY KEY REFERENCES bookings(id) ON DELETE CASCADE,
            workflow_id text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            started_at timestamptz,
            last_error text
        );
        CREATE INDEX intake_outbox_pending ON intake_outbox (created_at) WHERE started_at IS NULL;

        CREATE TABLE circuit_breakers (
            name text PRIMARY KEY,
            state text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
            consecutive_failures integer NOT NULL DEFAULT 0,
            opened_at timestamptz,
            open_until timestamptz
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS circuit_breakers, intake_outbox, permit_intervals,
            restaurant_permits, email_outbox, state_event_outbox, observability_events,
            booking_assignment_attempts, booking_assignment_state_history, allocations,
            bookings, table_adjacency, dining_tables, zones, service_turn_times,
            restaurant_services, restaurants CASCADE;
        """
    )
