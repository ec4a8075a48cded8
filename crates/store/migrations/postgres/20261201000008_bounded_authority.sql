-- Bounded authority: who created a token from which token, who may see which audit events, the
-- organization a caller acted from, and organization policies.

-- The token of this service that created this one (absent for identity-provider callers). A
-- cascading revoke follows it down; the index makes each step one lookup.
alter table access_tokens add column parent_id text;
create index access_tokens_parent on access_tokens (parent_id) where parent_id is not null;

-- `token_owner`: the user who created the token an event is about, so that a member who is not an
-- admin lists the events of their own tokens. `actor_home_org_id`: the actor's own organization
-- when it acted in another one (`x-epilot-org-id`). `details`: JSON for events that change more
-- than a token (`policy_changed` holds the old and the new policy). Policy events name no token.
alter table audit_events
    add column token_owner text,
    add column actor_home_org_id text,
    add column details text,
    alter column token_id drop not null,
    drop constraint audit_events_action_check,
    add constraint audit_events_action_check
        check (action in ('created', 'revoked', 'rotated', 'suspended', 'resumed', 'policy_changed'));

update audit_events e set token_owner = t.created_by
    from access_tokens t
    where t.id = e.token_id and e.token_owner is null;
-- Contact-identification tokens are never stored: their creator is the `created` event's actor.
update audit_events set token_owner = actor_user_id
    where token_owner is null and action = 'created';

create index audit_events_org_owner on audit_events (org_id, token_owner, id desc);

-- One policy per organization: limits on the tokens its members create, as JSON (see
-- `tokens::policy`). No row: the defaults, which are the service's own limits.
create table org_policies (
    org_id     text primary key,
    policy     text not null,
    updated_at timestamptz not null,
    updated_by text not null
);

-- A member who is not an admin lists their own tokens: one range scan, as the organization's
-- list is.
create index access_tokens_org_creator on access_tokens (org_id, created_by, created_at desc, id desc);
