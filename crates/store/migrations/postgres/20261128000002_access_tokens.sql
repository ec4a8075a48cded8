-- Token records. The JWT itself is never stored: it is shown once, at creation.
-- Contact identification tokens are minted without a record, so their type is not allowed here.
create table access_tokens (
    id             text primary key,
    org_id         text not null,
    created_by     text not null,
    token_type     text not null
        constraint access_tokens_token_type_check
        check (token_type in ('api', 'app', 'assume', 'journey', 'portal', 'portal_preview')),
    name           text not null
        constraint access_tokens_name_check check (char_length(name) between 1 and 255),
    assignments    text[] not null default '{}',
    read_only      boolean not null default false,
    anonymize      boolean not null default false,
    journey_id     text,
    portal_id      text,
    portal_user_id text,
    -- The kid of the key that signed the token.
    key_id         text not null references signing_keys (kid),
    created_at     timestamptz not null,
    expires_at     timestamptz,
    revoked_at     timestamptz,
    -- Day of last use (one-day accuracy), written in batches by the usage tracker.
    last_used      date
);

-- The list of an organization, newest first: one index range scan per page.
create index access_tokens_org_created on access_tokens (org_id, created_at desc, id desc);
