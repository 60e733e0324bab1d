"""request in one statement: a session's occupancy and the decision on an enrolment request as functions of the
database, so that a request is decided and written (enrolment and EnrollmentRequested) in one statement, and the
session's row stays locked only for the database's own time (enrollment.service.request_enrolment)

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Where a session's places stand, and where one account stands in it. Called after the session's row is locked, in
# a statement of its own (READ COMMITTED: it then sees every decision committed before the lock was granted).
SESSION_OCCUPANCY = """
CREATE FUNCTION session_occupancy(for_session uuid, for_account uuid)
RETURNS TABLE (taken bigint, privatised boolean, enrolled boolean, offered bigint, waiting bigint,
               waiting_for_account boolean)
LANGUAGE sql STABLE AS $$
    SELECT active.taken, active.privatised, active.enrolled, queue.offered, queue.waiting, queue.waiting_for_account
    FROM (SELECT count(*) AS taken,
                 coalesce(bool_or(privatisation), false) AS privatised,
                 coalesce(bool_or(account_id = for_account), false) AS enrolled
          FROM enrolments WHERE session_id = for_session AND status IN ('pending', 'confirmed')) AS active,
         (SELECT count(*) FILTER (WHERE status = 'offered') AS offered,
                 count(*) AS waiting,
                 coalesce(bool_or(account_id = for_account), false) AS waiting_for_account
          FROM waiting_list WHERE session_id = for_session AND status IN ('waiting', 'offered')) AS queue
$$
"""

# The enrolment `wanted` (a row of enrolments as JSON, status pending) is inserted with its EnrollmentRequested
# (an outbox row made by the caller) when the session takes it; else nothing is written and the refusal is returned.
# `wanted.tokens` is the price the caller read: a price changed meanwhile is answered 'price_changed' (ask again).
REQUEST_ENROLMENT = """
CREATE FUNCTION request_enrolment(
    wanted jsonb, close_before interval, event_id uuid, topic text, key bytea, value bytea, headers jsonb
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    enrolment enrolments := jsonb_populate_record(NULL::enrolments, wanted);
    session_row sessions;
    places record;
BEGIN
    SELECT * INTO session_row FROM sessions WHERE id = enrolment.session_id FOR UPDATE;
    IF NOT FOUND OR session_row.status <> 'published' THEN
        RETURN 'session_unavailable';
    END IF;
    IF enrolment.created_at >= session_row.starts_at - close_before THEN
        RETURN 'enrolment_closed';
    END IF;
    SELECT * INTO places FROM session_occupancy(enrolment.session_id, enrolment.account_id);
    IF places.enrolled THEN
        RETURN 'already_enrolled';
    ELSIF places.privatised THEN
        RETURN 'session_privatised';
    ELSIF places.waiting_for_account THEN
        RETURN 'already_waiting';
    END IF;
    IF enrolment.privatisation THEN
        IF session_row.premium_price_tokens IS NULL THEN
            RETURN 'not_privatisable';
        ELSIF places.taken > 0 OR places.waiting > 0 THEN
            RETURN 'others_enrolled';
        ELSIF enrolment.tokens <> session_row.premium_price_tokens THEN
            RETURN 'price_changed';
        END IF;
    ELSE
        IF session_row.capacity IS NOT NULL AND session_row.capacity - places.taken - places.offered <= 0 THEN
            RETURN 'session_full';
        ELSIF enrolment.tokens <> session_row.price_tokens THEN
            RETURN 'price_changed';
        END IF;
    END IF;
    INSERT INTO enrolments SELECT (enrolment).*;
    INSERT INTO outbox (event_id, topic, key, value, headers)
        VALUES (request_enrolment.event_id, request_enrolment.topic, request_enrolment.key,
                request_enrolment.value, request_enrolment.headers);
    RETURN 'pending';
END
$$
"""


def upgrade() -> None:
    op.execute(SESSION_OCCUPANCY)
    op.execute(REQUEST_ENROLMENT)


def downgrade() -> None:
    op.execute("DROP FUNCTION request_enrolment(jsonb, interval, uuid, text, bytea, bytea, jsonb)")
    op.execute("DROP FUNCTION session_occupancy(uuid, uuid)")
