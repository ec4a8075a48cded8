-- The embedded store: the same tables as PostgreSQL's migrations build, for one process.
-- Times are integers (microseconds since the Unix epoch, UTC) so that they compare and sort as
-- numbers; role ids are a JSON array; the day of last use is text (YYYY-MM-DD).

-- Signing keys of the four key sets; the private key is sealed with AES-256-GCM under the
-- key-encryption key (nonce per key; key set and kid as associated data).
create table signing_keys (
    kid                text primary key,
    key_set            text not null
        check (key_set in ('api', 'public', 'portal-preview', 'contact-identification')),
    state              text not null check (state in ('next', 'active', 'retired', 'revoked')),
    n                  text not null,
    e                  text not null,
    private_key_sealed blob not null,
    nonce              blob not null,
    created_at         integer not null,
    activated_at       integer,
    retired_at         integer,
    revoked_at         integer
) strict;

create unique index signing_keys_one_active on signing_keys (key_set) where state = 'active';

-- Token records; the JWT itself is never stored.
create table access_tokens (
    id             text primary key,
    org_id         text not null,
    created_by     text not null,
    token_type     text not null
        check (token_type in ('api', 'app', 'assume', 'journey', 'portal', 'portal_preview')),
    name           text not null check (length(name) between 1 and 255),
    assignments    text not null default '[]' check (json_valid(assignments)),
    read_only      integer not null default 0,
    anonymize      integer not null default 0,
    journey_id     text,
    portal_id      text,
    portal_user_id text,
    key_id         text not null references signing_keys (kid),
    created_at     integer not null,
    expires_at     integer,
    revoked_at     integer,
    last_used      text,
    rotated_from   text
) strict;

create index access_tokens_org_created on access_tokens (org_id, created_at desc, id desc);
create index access_tokens_org_unrevoked on access_tokens (org_id, created_at desc, id desc)
    where revoked_at is null;

-- Who changed which token, when and from where; written in the transaction of the change.
create table audit_events (
    id               integer primary key autoincrement,
    org_id           text not null,
    occurred_at      integer not null,
    action           text not null check (action in ('created', 'revoked', 'rotated')),
    token_id         text not null,
    related_token_id text,
    actor_org_id     text not null,
    actor_user_id    text not null,
    actor_token_id   text,
    source_ip        text,
    user_agent       text
) strict;

create index audit_events_org on audit_events (org_id, id desc);
create index audit_events_org_token on audit_events (org_id, token_id, id desc);
