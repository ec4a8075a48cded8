-- Token lifecycle: rotation, the active-token list index, and audit events.

-- The token this one replaced, when it was made by rotation.
alter table access_tokens add column rotated_from text;

-- The default list (unrevoked tokens, newest first) is one range scan of this partial index,
-- however many revoked tokens the organization has.
create index access_tokens_org_unrevoked on access_tokens (org_id, created_at desc, id desc)
    where revoked_at is null;

-- Who changed which token, when and from where. Written in the same transaction as the change.
create table audit_events (
    id               bigint generated always as identity primary key,
    org_id           text not null,
    occurred_at      timestamptz not null default now(),
    action           text not null
        constraint audit_events_action_check check (action in ('created', 'revoked', 'rotated')),
    token_id         text not null,
    -- For `rotated`: the new token; for `created` by rotation: the token it replaced.
    related_token_id text,
    actor_org_id     text not null,
    actor_user_id    text not null,
    -- Set when the actor was one of this service's tokens.
    actor_token_id   text,
    source_ip        text,
    user_agent       text
);

create index audit_events_org on audit_events (org_id, id desc);
create index audit_events_org_token on audit_events (org_id, token_id, id desc);
