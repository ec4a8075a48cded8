-- Replicas keep the set of revoked tokens in memory and learn of each revocation through
-- LISTEN/NOTIFY on channel `access_tokens_revoked` (payload: the token id). The trigger covers
-- every way a token gets revoked; the notification is delivered when the transaction commits.
create function access_tokens_notify_revoked() returns trigger
language plpgsql as $$
begin
    perform pg_notify('access_tokens_revoked', new.id);
    return null;
end;
$$;

create trigger access_tokens_revoked
    after update of revoked_at on access_tokens
    for each row
    when (old.revoked_at is null and new.revoked_at is not null)
    execute function access_tokens_notify_revoked();
