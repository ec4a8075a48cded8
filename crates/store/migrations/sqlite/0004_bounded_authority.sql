-- Bounded authority, as on PostgreSQL (see the migration of the same name there): a token's
-- parent, the owner of the token an audit event is about, the actor's home organization, event
-- details, and organization policies. SQLite cannot change a column's constraints in place, so
-- audit_events is rebuilt with its rows and ids.

alter table access_tokens add column parent_id text;
create index access_tokens_parent on access_tokens (parent_id) where parent_id is not null;

create table audit_events_new (
    id                integer primary key autoincrement,
    org_id            text not null,
    occurred_at       integer not null,
    action            text not null
        check (action in ('created', 'revoked', 'rotated', 'suspended', 'resumed', 'policy_changed')),
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
    details           text check (details is null or json_valid(details))
) strict;

insert into audit_events_new (id, org_id, occurred_at, action, token_id, related_token_id,
        actor_org_id, actor_user_id, actor_token_id, source_ip, user_agent, token_type,
        contact_id, surface_id, token_owner)
    select e.id, e.org_id, e.occurred_at, e.action, e.token_id, e.related_token_id,
           e.actor_org_id, e.actor_user_id, e.actor_token_id, e.source_ip, e.user_agent,
           e.token_type, e.contact_id, e.surface_id,
           coalesce((select t.created_by from access_tokens t where t.id = e.token_id),
                    case when e.action = 'created' then e.actor_user_id end)
    from audit_events e;

drop table audit_events;
alter table audit_events_new rename to audit_events;
create index audit_events_org on audit_events (org_id, id desc);
create index audit_events_org_token on audit_events (org_id, token_id, id desc);
create index audit_events_org_owner on audit_events (org_id, token_owner, id desc);

create table org_policies (
    org_id     text primary key,
    policy     text not null check (json_valid(policy)),
    updated_at integer not null,
    updated_by text not null
) strict;

create index access_tokens_org_creator on access_tokens (org_id, created_by, created_at desc, id desc);
