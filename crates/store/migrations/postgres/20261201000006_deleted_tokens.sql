-- A token whose row is deleted (by hand, a cleanup job, or an intruder with write access) must stay
-- refused: replicas hold revocations in memory and, after a restart, reload them from the rows, so a
-- deleted row would otherwise make its token valid again. Each deleted row leaves a tombstone that
-- the reload reads, and is announced on the revocation channel like a revocation (delivered at
-- commit). Tombstones of expired tokens no longer matter and may be removed.
create table deleted_tokens (
    id         text primary key,
    org_id     text not null,
    -- The token's expiry: until then its tombstone is read.
    expires_at timestamptz,
    -- For operators only; no rule reads it.
    deleted_at timestamptz not null default now()
);

create function access_tokens_tombstone() returns trigger
language plpgsql as $$
begin
    insert into deleted_tokens (id, org_id, expires_at)
        values (old.id, old.org_id, old.expires_at)
        on conflict (id) do nothing;
    perform pg_notify('access_tokens_revoked', old.id);
    return null;
end;
$$;

create trigger access_tokens_deleted
    after delete on access_tokens
    for each row
    execute function access_tokens_tombstone();

-- TRUNCATE fires no row trigger: every row gets its tombstone before the table is emptied.
create function access_tokens_tombstone_all() returns trigger
language plpgsql as $$
begin
    insert into deleted_tokens (id, org_id, expires_at)
        select id, org_id, expires_at from access_tokens
        on conflict (id) do nothing;
    perform pg_notify('access_tokens_revoked', id) from access_tokens;
    return null;
end;
$$;

create trigger access_tokens_truncated
    before truncate on access_tokens
    for each statement
    execute function access_tokens_tombstone_all();
