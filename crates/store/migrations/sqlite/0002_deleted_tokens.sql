-- A deleted token row leaves a tombstone, as on PostgreSQL, so that the list of revoked tokens
-- (`revoked_unexpired`) reads the same on both stores. The embedded store's checks read the token's
-- row itself, which a deleted row fails already.
create table deleted_tokens (
    id         text primary key,
    org_id     text not null,
    expires_at integer
) strict;

create trigger access_tokens_deleted
    after delete on access_tokens
    for each row
    begin
        insert or ignore into deleted_tokens (id, org_id, expires_at)
            values (old.id, old.org_id, old.expires_at);
    end;
