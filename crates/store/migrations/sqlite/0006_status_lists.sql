-- Token Status Lists, as on PostgreSQL (see the migration of the same name there): an index per
-- stored token in a list of its key set. The embedded store has no sequences: each key set's next
-- index is a counter row, advanced in the write transaction of the insert (which holds SQLite's
-- write lock), so indices are never shared and never handed out again.
create table status_list_counters (
    key_set    text primary key,
    next_index integer not null check (next_index >= 0)
) strict;
insert into status_list_counters (key_set, next_index)
    values ('api', 0), ('public', 0), ('portal-preview', 0);

alter table access_tokens add column status_key_set text;
alter table access_tokens add column status_list integer check (status_list >= 0);
alter table access_tokens add column status_idx integer
    check (status_idx between 0 and 1048575);
create unique index access_tokens_status_unique
    on access_tokens (status_key_set, status_list, status_idx);
create index access_tokens_status_revoked on access_tokens (status_key_set, status_list, status_idx)
    where revoked_at is not null and status_key_set is not null;
-- ... and from the suspended ones (2), which are few.
create index access_tokens_status_suspended on access_tokens (status_key_set, status_list, status_idx)
    where suspended_at is not null and revoked_at is null and status_key_set is not null;

alter table deleted_tokens add column status_key_set text;
alter table deleted_tokens add column status_list integer;
alter table deleted_tokens add column status_idx integer;

drop trigger access_tokens_deleted;
create trigger access_tokens_deleted
    after delete on access_tokens
    for each row
    begin
        insert or ignore into deleted_tokens (id, org_id, expires_at, status_key_set, status_list,
                status_idx)
            values (old.id, old.org_id, old.expires_at, old.status_key_set, old.status_list,
                old.status_idx);
    end;
