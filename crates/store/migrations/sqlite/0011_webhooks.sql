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
