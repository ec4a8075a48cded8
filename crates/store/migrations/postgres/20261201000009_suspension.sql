-- Suspension: a suspended token is refused until it is resumed; revoking it revokes it for good.
alter table access_tokens add column suspended_at timestamptz;

-- Replicas hold the refused tokens (revoked or suspended) in memory and follow every change on the
-- revocation channel (see 20261128000004_revocation_notify.sql): a suspension is announced as
-- `suspended:<id>` and a resumption as `resumed:<id>`, in commit order with the revocations.
create function access_tokens_notify_suspension() returns trigger
language plpgsql as $$
begin
    if new.suspended_at is not null then
        perform pg_notify('access_tokens_revoked', 'suspended:' || new.id);
    else
        perform pg_notify('access_tokens_revoked', 'resumed:' || new.id);
    end if;
    return null;
end;
$$;

create trigger access_tokens_suspension
    after update of suspended_at on access_tokens
    for each row
    when (old.suspended_at is distinct from new.suspended_at)
    execute function access_tokens_notify_suspension();
