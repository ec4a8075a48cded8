-- Workload identity federation (see the PostgreSQL migration of the same name). Times are
-- microseconds since the epoch.
create table federated_credentials (
    id          text primary key,
    org_id      text not null,
    name        text not null,
    issuer      text not null,
    audience    text not null,
    subject     text,
    claims      text check (claims is null or json_valid(claims)),
    assignments text not null default '[]' check (json_valid(assignments)),
    read_only   integer not null,
    anonymize   integer not null,
    created_by  text not null,
    created_at  integer not null
) strict;
create index federated_credentials_org on federated_credentials (org_id, created_at desc, id desc);
create index federated_credentials_issuer on federated_credentials (issuer);

create table federation_replays (
    issuer     text not null,
    jti        text not null,
    expires_at integer not null,
    primary key (issuer, jti)
) strict;
create index federation_replays_expiry on federation_replays (expires_at);

-- The credential events are audited; SQLite cannot change a check in place, so audit_events is
-- rebuilt with its rows and ids (its outbox trigger goes with the old table and is made again).
create table audit_events_new (
    id                integer primary key autoincrement,
    org_id            text not null,
    occurred_at       integer not null,
    action            text not null
        check (action in ('created', 'revoked', 'rotated', 'suspended', 'resumed', 'policy_changed',
                          'webhook_created', 'webhook_deleted', 'webhook_secret_rotated',
                          'federated_credential_created', 'federated_credential_deleted')),
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
    surface_id, token_owner, actor_home_org_id, details, actor_type)
select id, org_id, occurred_at, action, token_id, related_token_id, actor_org_id, actor_user_id,
    actor_token_id, source_ip, user_agent, token_type, contact_id, surface_id, token_owner,
    actor_home_org_id, details, actor_type
from audit_events;
drop table audit_events;
alter table audit_events_new rename to audit_events;
create index audit_events_org on audit_events (org_id, id desc);
create index audit_events_org_token on audit_events (org_id, token_id, id desc);
create index audit_events_org_owner on audit_events (org_id, token_owner, id desc);

create trigger audit_events_webhooks after insert on audit_events
when exists (select 1 from webhook_endpoints e where e.org_id = new.org_id and e.enabled)
begin
    insert into webhook_pending (event_id, org_id) values (new.id, new.org_id);
end;
