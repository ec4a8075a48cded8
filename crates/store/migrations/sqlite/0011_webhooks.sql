-- Lifecycle webhooks (see the PostgreSQL migration of the same name). Times are microseconds
-- since the epoch; the outbox trigger runs for each audit event.

create table webhook_endpoints (
    id              text primary key,
    org_id          text not null,
    url             text not null,
    events          text not null,
    description     text not null default '',
    secret_nonce    blob not null,
    secret_sealed   blob not null,
    previous_nonce  blob,
    previous_sealed blob,
    previous_until  integer,
    enabled         integer not null default 1,
    disabled_at     integer,
    failing_since   integer,
    created_at      integer not null,
    created_by      text not null
) strict;
create index webhook_endpoints_org on webhook_endpoints (org_id, created_at, id);

create table webhook_deliveries (
    id              integer primary key autoincrement,
    endpoint_id     text not null references webhook_endpoints (id) on delete cascade,
    org_id          text not null,
    message_id      text not null,
    event_type      text not null,
    subject         text,
    payload         text not null,
    created_at      integer not null,
    status          text not null default 'pending'
        check (status in ('pending', 'delivered', 'failed')),
    attempts        integer not null default 0,
    next_attempt_at integer,
    last_attempt_at integer,
    last_status     integer,
    last_error      text,
    delivered_at    integer
) strict;
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, id desc);
-- Delivered and failed deliveries, oldest first: what the retention prunes.
create index webhook_deliveries_done on webhook_deliveries (created_at) where status <> 'pending';
-- A token's pending deliveries to an endpoint, oldest first: a later one waits for the earlier.
create index webhook_deliveries_in_order on webhook_deliveries (endpoint_id, subject, created_at, id)
    where status = 'pending';

-- Endpoint changes are audited (see the PostgreSQL migration); SQLite cannot change a check in
-- place, so audit_events is rebuilt with its rows and ids.
create table audit_events_new (
    id                integer primary key autoincrement,
    org_id            text not null,
    occurred_at       integer not null,
    action            text not null
        check (action in ('created', 'revoked', 'rotated', 'suspended', 'resumed', 'policy_changed',
                          'webhook_created', 'webhook_deleted', 'webhook_secret_rotated')),
    token_id          text,
    related_token_id  text,
    actor_org_id      text not null,
    actor_user_id     text not null,
    actor_token_id    text,
    source_ip         text,
    user_agent        text,
    token_type        text,
    contact_id        text,
    surface_id        text,
    token_owner       text,
    actor_home_org_id text,
    details           text check (details is null or json_valid(details)),
    actor_type        text
) strict;
insert into audit_events_new (id, org_id, occurred_at, action, token_id, related_token_id,
    actor_org_id, actor_user_id, actor_token_id, source_ip, user_agent, token_type, contact_id,
    surface_id, token_owner, actor_home_org_id, details)
select id, org_id, occurred_at, action, token_id, related_token_id, actor_org_id, actor_user_id,
    actor_token_id, source_ip, user_agent, token_type, contact_id, surface_id, token_owner,
    actor_home_org_id, details
from audit_events;
drop table audit_events;
alter table audit_events_new rename to audit_events;
create index audit_events_org on audit_events (org_id, id desc);
create index audit_events_org_token on audit_events (org_id, token_id, id desc);
create index audit_events_org_owner on audit_events (org_id, token_owner, id desc);

create table webhook_pending (
    event_id integer primary key,
    org_id   text not null
) strict;

create trigger audit_events_webhooks after insert on audit_events
when exists (select 1 from webhook_endpoints e where e.org_id = new.org_id and e.enabled)
begin
    insert into webhook_pending (event_id, org_id) values (new.id, new.org_id);
end;

alter table access_tokens add column notice_at integer;
create index access_tokens_notice on access_tokens (notice_at) where notice_at is not null;
update access_tokens set notice_at = cast(strftime('%s', 'now') as integer) * 1000000
where expires_at > cast(strftime('%s', 'now') as integer) * 1000000 and revoked_at is null;

create table scheduled_runs (
    name   text primary key,
    ran_at integer not null
) strict;
insert into scheduled_runs (name, ran_at) values ('expiry_notices', 0);
