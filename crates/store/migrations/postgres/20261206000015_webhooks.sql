-- Lifecycle webhooks: an organization's endpoints, the deliveries to them, and the outbox they
-- are made from.
--
-- The outbox is the audit trail: every change writes its audit event in its own transaction, and
-- a statement trigger adds the ids of those events whose organization has an enabled endpoint to
-- `webhook_pending` in that same transaction. A dispatcher (any replica) turns pending events
-- into deliveries and deletes them from `webhook_pending`, again in one transaction: an event is
-- delivered only once its change is committed, and never lost or doubled between the two.

create table webhook_endpoints (
    id              text primary key,
    org_id          text not null,
    url             text not null,
    -- The event types it receives, each between commas (',token.created,token.revoked,'); empty:
    -- every type.
    events          text not null,
    description     text not null default '',
    -- The signing secret, sealed with the key-encryption key (AES-256-GCM; associated data
    -- `webhook:<id>`), and the one it replaced while both sign (`previous_until`).
    secret_nonce    bytea not null,
    secret_sealed   bytea not null,
    previous_nonce  bytea,
    previous_sealed bytea,
    previous_until  timestamptz,
    enabled         boolean not null default true,
    disabled_at     timestamptz,
    -- Since when every delivery to it has failed (null after any success).
    failing_since   timestamptz,
    created_at      timestamptz not null,
    created_by      text not null
);
create index webhook_endpoints_org on webhook_endpoints (org_id, created_at, id);

create table webhook_deliveries (
    id              bigint generated always as identity primary key,
    endpoint_id     text not null references webhook_endpoints (id) on delete cascade,
    org_id          text not null,
    -- The message's id (`webhook-id`): the same for every attempt, and for every endpoint that
    -- receives the same event.
    message_id      text not null,
    event_type      text not null,
    subject         text,
    -- The CloudEvent as sent, byte for byte.
    payload         text not null,
    created_at      timestamptz not null,
    status          text not null default 'pending'
        constraint webhook_deliveries_status check (status in ('pending', 'delivered', 'failed')),
    attempts        integer not null default 0,
    -- When it is next tried (while pending); a claimed delivery's lease ends here.
    next_attempt_at timestamptz,
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, id desc);
-- Delivered and failed deliveries, oldest first: what the retention prunes.
create index webhook_deliveries_done on webhook_deliveries (created_at) where status <> 'pending';
-- A token's pending deliveries to an endpoint, oldest first: a later one waits for the earlier.
create index webhook_deliveries_in_order on webhook_deliveries (endpoint_id, subject, created_at, id)
    where status = 'pending';

-- Who added, deleted or re-keyed an endpoint is audited like a policy change (an endpoint
-- receives every change of the organization's tokens). Rows written so far all pass: NOT VALID
-- skips reading them.
alter table audit_events
    drop constraint audit_events_action_check,
    add constraint audit_events_action_check
        check (action in ('created', 'revoked', 'rotated', 'suspended', 'resumed', 'policy_changed',
                          'webhook_created', 'webhook_deleted', 'webhook_secret_rotated')) not valid;

-- Who acted when no caller did: `possession` (whoever held the token reported it) or
-- `secret_scanning` (a scanner found it leaked); null for callers.
alter table audit_events add column actor_type text;

create table webhook_pending (
    event_id bigint primary key,
    -- With the id, the audit event's key.
    org_id   text not null
);

create function webhook_pending_events() returns trigger language plpgsql as $$
begin
    insert into webhook_pending (event_id, org_id)
    select n.id, n.org_id from new_events n
    where exists (select 1 from webhook_endpoints e where e.org_id = n.org_id and e.enabled);
    return null;
end
$$;

create trigger audit_events_webhooks after insert on audit_events
    referencing new table as new_events
    for each statement execute function webhook_pending_events();

-- When the service next looks at a token to tell of its expiry (`token.expiring` at each
-- threshold, `token.expired`): set when the token is written, moved on by each notice, null once
-- nothing is left to tell. The expiry scan reads only the rows that are due, from this index.
alter table access_tokens add column notice_at timestamptz;
create index access_tokens_notice on access_tokens (notice_at) where notice_at is not null;
-- Tokens from before: looked at by the first scan, which tells what is due and schedules the rest.
update access_tokens set notice_at = now() where expires_at > now() and revoked_at is null;

-- Background work that one replica at a time does, and when it last did it.
create table scheduled_runs (
    name   text primary key,
    ran_at timestamptz not null
);
insert into scheduled_runs (name, ran_at) values ('expiry_notices', '-infinity');
