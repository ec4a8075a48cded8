-- Token Status Lists (draft-ietf-oauth-status-list): every stored token created from now on gets
-- an index in a status list of its own key set, which its JWT names in the `status` claim. A key
-- set's indices come from its own sequence, so no two tokens share one on any number of replicas
-- and none is ever handed out again (an index taken by a transaction that rolled back stays
-- unused, which a list shows as valid and no token names). Index n of a set is index
-- n % 2^20 of list n / 2^20: a new list starts when one is full. Rows created before this
-- migration have no index and their tokens carry no `status` claim.
create sequence status_index_api as bigint minvalue 0 start 0;
create sequence status_index_public as bigint minvalue 0 start 0;
create sequence status_index_portal_preview as bigint minvalue 0 start 0;

-- The next index of a key set (null for a set whose tokens are never stored). Volatile: called
-- once per inserted row, as the grouped insert does for each row of its group.
create function status_list_next_index(key_set text) returns bigint
language sql volatile as $$
    select nextval(case key_set
        when 'api' then 'status_index_api'
        when 'public' then 'status_index_public'
        when 'portal-preview' then 'status_index_portal_preview'
    end::regclass)
$$;

alter table access_tokens
    add column status_key_set text,
    add column status_list integer,
    add column status_idx integer,
    add constraint access_tokens_status_complete check (
        (status_key_set is null and status_list is null and status_idx is null)
        or (status_key_set is not null and status_list >= 0
            and status_idx between 0 and 1048575)),
    add constraint access_tokens_status_unique unique (status_key_set, status_list, status_idx);

-- What a list shows besides 0 is read from the revoked rows: one range scan per key set ...
create index access_tokens_status_revoked on access_tokens (status_key_set, status_list, status_idx)
    where revoked_at is not null and status_key_set is not null;
-- ... and from the suspended ones (2), which are few.
create index access_tokens_status_suspended on access_tokens (status_key_set, status_list, status_idx)
    where suspended_at is not null and revoked_at is null and status_key_set is not null;

-- A deleted row keeps showing 1 (invalid) in its list: the tombstone remembers where it was.
alter table deleted_tokens
    add column status_key_set text,
    add column status_list integer,
    add column status_idx integer;
create index deleted_tokens_status on deleted_tokens (status_key_set, status_list)
    where status_key_set is not null;

create or replace function access_tokens_tombstone() returns trigger
language plpgsql as $$
begin
    insert into deleted_tokens (id, org_id, expires_at, status_key_set, status_list, status_idx)
        values (old.id, old.org_id, old.expires_at, old.status_key_set, old.status_list,
                old.status_idx)
        on conflict (id) do nothing;
    perform pg_notify('access_tokens_revoked', old.id);
    return null;
end;
$$;

create or replace function access_tokens_tombstone_all() returns trigger
language plpgsql as $$
begin
    insert into deleted_tokens (id, org_id, expires_at, status_key_set, status_list, status_idx)
        select id, org_id, expires_at, status_key_set, status_list, status_idx from access_tokens
        on conflict (id) do nothing;
    perform pg_notify('access_tokens_revoked', id) from access_tokens;
    return null;
end;
$$;
