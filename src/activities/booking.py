"""Activities of the booking workflow.

Errors are sorted by kind: a business outcome is a return value; a booking
that does not exist or a forbidden transition is a non-retryable
ApplicationError; anything else (database down, timeouts, deadlocks) raises
and is retried by the activity retry policy without consuming an attempt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.flags import decide
from seatflow import metrics
from seatflow.breaker import CircuitBreaker, is_infrastructure_error
from seatflow.config import Settings
from seatflow.domain.assignment import AttemptOutcome, Pipeline
from seatflow.domain.messages import (
    AssignRequest,
    AssignResult,
    AttemptRequest,
    AttemptResult,
    BeginResult,
    BookingContext,
    CancelRequest,
    EmailRequest,
    EmailResult,
    EventRequest,
    LegacySummaryRequest,
    TransitionRequest,
    TransitionResult,
    VerifyRequest,
)
from seatflow.domain.planning import BookingRequest, EngineConfig, RestaurantSnapshot
from seatflow.domain.states import AssignmentState, IllegalTransition
from seatflow.engine import quote_tables, search
from seatflow.engine.validation import operator_plan_problem
from seatflow.logging import bind_booking, get_logger
from seatflow.mail import (
    MAX_SEND_ROUNDS,
    MailError,
    MailTransport,
    claim_outbox_email,
    deliver,
    finish_claim,
    is_local,
    publish_breaker_change,
)
from seatflow.storage import attempts, lifecycle
from seatflow.storage.outbox import EmailInFlight
from seatflow.storage.transitions import (
    BookingNotFound,
    record_booking_event,
    save_breaker_events,
)

T = TypeVar("T")
log = get_logger("seatflow.activities")


def _non_retryable(exc: Exception) -> ApplicationError:
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True)


class BookingActivities:
    """Given its dependencies once, at worker start."""

    def __init__(
        self,
        engine: AsyncEngine,
        transport: MailTransport,
        settings: Settings,
        breaker: CircuitBreaker | None = None,
        mail_breaker: CircuitBreaker | None = None,
    ):
        self.engine = engine
        self.transport = transport
        self.settings = settings
        self.config = settings.engine_config()
        self.breaker = breaker or CircuitBreaker(
            threshold=settings.breaker_threshold, cooldown=settings.breaker_cooldown_seconds
        )
        # The mail server is an outside system with its own failures: they
        # never open the database breaker (nor the other way round).
        self.mail_breaker = mail_breaker or CircuitBreaker(
            name="mail", threshold=settings.breaker_threshold,
            cooldown=settings.breaker_cooldown_seconds,
        )

    async def _guard(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run database work behind the circuit breaker. While it is open the
        activity fails fast with a retryable error whose retry delay is the
        rest of the cooldown: the workflow waits, no attempt is consumed."""
        before = self.breaker.state
        wait = self.breaker.remaining()
        self._publish_breaker(before)
        if wait > 0:
            raise ApplicationError(
                f"circuit breaker open for {wait:.1f}s more: database unavailable",
                type="CircuitOpen",
                next_retry_delay=timedelta(seconds=wait),
            )
        try:
            result = await work()
        except ApplicationError:
            raise
        except Exception as exc:
            if is_infrastructure_error(exc):
                before = self.breaker.state
                self.breaker.record_failure(exc)
                self._publish_breaker(before)
            raise
        before = self.breaker.state
        self.breaker.record_success()
        self._publish_breaker(before)
        if self.breaker.pending_events:
            await self._flush_breaker_events()
        return result

    def _publish_breaker(self, before: str) -> None:
        """Breaker state to the metrics (process-wide gauge, opens counter)."""
        after = self.breaker.state
        if after == before:
            return
        if before == "closed" and after == "open":
            metrics.record_circuit_breaker_opened(self.breaker.name)
        else:
            metrics.set_circuit_breaker_state(self.breaker.name, after)

    async def _flush_breaker_events(self) -> None:
        events = self.breaker.take_events()
        try:
            await save_breaker_events(self.engine, source="assignment.coordinator",
                                      events=events)
        except Exception:  # noqa: BLE001 - best effort; keep them for the next success
            self.breaker.pending_events[:0] = events

    @activity.defn(name="begin_booking")
    async def begin_booking(self, req: VerifyRequest) -> BeginResult:
        """Verify the booking (created -> capacity_verified ->
        assignment_pending, or failed) and read the flags, in one local
        activity: the booking's first activation does both."""
        try:
            ctx = await self._guard(lambda: lifecycle.verify_booking(
                self.engine, req.booking_id, now=datetime.now(UTC)))
        except (BookingNotFound, IllegalTransition) as exc:
            raise _non_retryable(exc) from exc
        context = BookingContext(
            booking_id=ctx.booking_id, restaurant_id=ctx.restaurant_id,
            party_size=ctx.party_size, state=ctx.state, version=ctx.version, status=ctx.status,
            start=ctx.start.isoformat(), table_ids=ctx.table_ids, reason=ctx.reason,
            attempts_used=ctx.attempts_used,
        )
        return BeginResult(context=context, decision=decide(
            self.settings, ctx.restaurant_id, email_local=is_local(self.transport)))

    @activity.defn(name="run_attempt")
    async def run_attempt(self, req: AttemptRequest) -> AttemptResult:
        """One automatic attempt in one transaction (see storage.attempts), by
        the engine or, on the legacy pipeline, by the legacy planner."""
        now = datetime.now(UTC)
        if req.pipeline == Pipeline.LEGACY:
            planner: attempts.Planner = partial(_legacy_plan, self.config)
        else:
            planner = partial(_engine_plan, self.config, now)
        spec = attempts.AttemptSpec(
            booking_id=req.booking_id, restaurant_id=req.restaurant_id,
            expected_version=req.expected_version, attempt_no=req.attempt_no,
            on_failure=AssignmentState(req.on_failure), max_parallel=req.max_parallel,
            slot_wait_seconds=req.slot_wait_seconds, waited_ms=req.waited_ms,
            pipeline=req.pipeline.value, decision_inputs=req.decision_inputs,
        )
        with bind_booking(req.booking_id, attempt=req.attempt_no, pipeline=req.pipeline.value):
            try:
                rec = await self._guard(lambda: attempts.run_attempt(self.engine, spec, planner))
            except (BookingNotFound, IllegalTransition) as exc:
                log.warning("attempt refused", error=str(exc))
                raise _non_retryable(exc) from exc
            if rec.outcome == AttemptOutcome.CONFIRMED:
                log.info("booking confirmed", tables=list(rec.tables), strategy=rec.strategy,
                         wait_ms=rec.wait_ms, hold_ms=rec.hold_ms)
            elif rec.outcome == AttemptOutcome.FAILED:
                log.info("attempt failed", reason=rec.reason, next_state=rec.state)
            return AttemptResult(
                outcome=rec.outcome, state=rec.state, version=rec.version, tables=rec.tables,
                strategy=rec.strategy, reason=rec.reason, wait_ms=rec.wait_ms,
                hold_ms=rec.hold_ms, search_ms=rec.search_ms, notify=rec.notify,
                as_of=rec.as_of,
            )

    @activity.defn(name="assign_tables")
    async def assign_tables(self, req: AssignRequest) -> AssignResult:
        """An operator's manual assignment (see storage.attempts.assign_tables)."""
        spec = attempts.OperatorAssignment(
            booking_id=req.booking_id, expected_version=req.expected_version,
            attempt_no=req.attempt_no, tables=req.table_ids, actor=req.actor,
            pipeline=req.pipeline.value, note=req.note, force=req.force,
        )
        check = partial(_operator_check, self.config, req.force)
        with bind_booking(req.booking_id, attempt=req.attempt_no, pipeline=req.pipeline.value):
            try:
                rec = await self._guard(lambda: attempts.assign_tables(self.engine, spec, check))
            except (BookingNotFound, IllegalTransition) as exc:
                log.warning("assignment refused", error=str(exc))
                raise _non_retryable(exc) from exc
            confirmed = rec.outcome == AttemptOutcome.CONFIRMED
            if confirmed:
                log.info("booking confirmed", tables=list(rec.tables), actor=req.actor,
                         force=req.force)
            else:
                log.info("manual assignment refused", reason=rec.reason, state=rec.state)
            return AssignResult(confirmed=confirmed, state=rec.state, version=rec.version,
                                tables=rec.tables, strategy=rec.strategy, reason=rec.reason)

    @activity.defn(name="transition_state")
    async def transition_state(self, req: TransitionRequest) -> TransitionResult:
        try:
            done = await self._guard(lambda: lifecycle.apply_transition(
                self.engine, req.booking_id, req.expected_version, req.to_state,
                reason=req.reason, actor=req.actor, metadata=req.metadata,
            ))
        except (BookingNotFound, IllegalTransition) as exc:
            raise _non_retryable(exc) from exc
        return TransitionResult(ok=done.ok, state=done.state, version=done.version,
                                conflict=done.conflict, reason=done.reason)

    @activity.defn(name="record_legacy_summary")
    async def record_legacy_summary(self, req: LegacySummaryRequest) -> None:
        """One `auto_assign.summary` event per booking: the legacy outcome the
        shadow compares against."""
        await self._guard(lambda: record_booking_event(
            self.engine, booking_id=req.booking_id, source="auto_assign",
            event_type="auto_assign.summary", once=True,
            context={"outcome": req.outcome, "tries": req.tries, "tables": list(req.tables),
                     "reason": req.reason, "as_of": req.as_of},
        ))

    @activity.defn(name="send_confirmation_email")
    async def send_confirmation_email(self, req: EmailRequest) -> EmailResult:
        """One outbox message of any kind (confirmation, table_changed,
        cancellation; see seatflow.mail): claim and commit, deliver on the mail
        thread pool, mark. A transient mail error retries, behind the mail
        breaker, for up to SEATFLOW_MAIL_MAX_ATTEMPTS deliveries; a permanent one
        (or the last transient one) ends the step with an `email.failed` event
        and a result: the booking stays as it is. A row re-armed during the
        send is claimed again and its newer message sent after. No message
        raised here carries the guest's address."""
        meter = activity.metric_meter()
        with bind_booking(req.booking_id):
            for _ in range(MAX_SEND_ROUNDS):
                result = await self._send_once(req, meter)
                if result is not None:
                    break
            else:
                raise ApplicationError(
                    f"{req.kind} email of booking {req.booking_id} kept changing during its "
                    "send", type="EmailInFlight")
            metrics.record_email(meter, sent=result.sent, duplicate=result.duplicate,
                                 kind=req.kind)
            if result.duplicate:
                log.info("duplicate email suppressed", kind=req.kind)
            elif result.sent:
                log.info("email sent", kind=req.kind, to=result.path)
            elif result.reason and not result.failed:
                log.info("email not sent", kind=req.kind, reason=result.reason)
        return result

    async def _send_once(self, req: EmailRequest, meter: Any) -> EmailResult | None:
        """One claim-deliver-mark round; None: superseded, claim again."""
        mail = self.mail_breaker
        wait = mail.remaining()
        if wait > 0:
            raise ApplicationError(
                f"mail circuit breaker open for {wait:.1f}s more: mail server unavailable",
                type="MailCircuitOpen", next_retry_delay=timedelta(seconds=wait),
            )
        try:
            claim = await self._guard(
                lambda: claim_outbox_email(self.engine, req.booking_id, req.kind))
        except EmailInFlight as exc:
            raise ApplicationError(
                str(exc), type="EmailInFlight",
                next_retry_delay=timedelta(seconds=exc.wait_seconds),
            ) from None
        if isinstance(claim, EmailResult):
            return claim
        sending = claim
        before = mail.state
        try:
            path = await deliver(self.transport, sending, self.settings.mail_from)
        except MailError as failure:
            error = failure
            if not error.permanent:
                mail.record_failure(str(error))
            publish_breaker_change(mail, before)
            give_up = sending.attempts >= self.settings.mail_max_attempts
            result = await self._guard(lambda: finish_claim(
                self.engine, sending, error=error, give_up=give_up, breaker=mail))
            metrics.record_email_failure(
                meter, kind=req.kind,
                error="permanent" if error.permanent else "gave_up" if give_up
                else "transient")
            if result is None or result.failed:
                if result is not None:
                    log.warning("email failed", kind=req.kind, attempts=sending.attempts,
                                reason=result.reason)
                return result
            log.warning("email not delivered; will retry", kind=req.kind,
                        attempt=sending.attempts, error=str(error))
            wait = mail.remaining()
            raise ApplicationError(
                str(error), type="MailTransient",
                next_retry_delay=timedelta(seconds=wait) if wait > 0 else None,
            ) from None
        mail.record_success()
        publish_breaker_change(mail, before)
        return await self._guard(lambda: finish_claim(
            self.engine, sending, path=path, breaker=mail))

    @activity.defn(name="cancel_booking")
    async def cancel_booking(self, req: CancelRequest) -> TransitionResult:
        try:
            done = await self._guard(lambda: lifecycle.cancel_booking(
                self.engine, req.booking_id, actor=req.actor, reason=req.reason
            ))
        except BookingNotFound as exc:
            raise _non_retryable(exc) from exc
        return TransitionResult(ok=done.ok, state=done.state, version=done.version,
                                conflict=done.conflict, reason=done.reason)

    @activity.defn(name="record_workflow_event")
    async def record_workflow_event(self, req: EventRequest) -> None:
        """An observability event the workflow records about its booking
        (e.g. a stale manual-review decision it dropped)."""

        await self._guard(lambda: record_booking_event(
            self.engine, booking_id=req.booking_id, source="assignment.workflow",
            event_type=req.event_type, context=req.context,
        ))

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.begin_booking,
            self.run_attempt,
            self.assign_tables,
            self.transition_state,
            self.record_legacy_summary,
            self.send_confirmation_email,
            self.cancel_booking,
            self.record_workflow_event,
        ]


def _engine_plan(config: EngineConfig, now: datetime, snapshot: RestaurantSnapshot,
                 request: BookingRequest) -> attempts.SearchOutcome:
    found = search(snapshot, request, config, now=now)
    return attempts.SearchOutcome(found.plans, found.moves, found.reason)


def _legacy_plan(config: EngineConfig, snapshot: RestaurantSnapshot,
                 request: BookingRequest) -> attempts.SearchOutcome:
    """The legacy planner: first fit, no re-packing."""
    plans = tuple(quote_tables(snapshot, request, config))
    reason = None if plans else (
        f"legacy planner found no tables for a party of {request.party_size}")
    return attempts.SearchOutcome(plans, (), reason)


def _operator_check(config: EngineConfig, force: bool, snapshot: RestaurantSnapshot,
                    request: BookingRequest, tables: tuple[str, ...]
                    ) -> tuple[str | None, str | None]:
    return operator_plan_problem(snapshot, request, tables, config, force=force)
