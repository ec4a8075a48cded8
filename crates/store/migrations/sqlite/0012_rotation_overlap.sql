-- Rotation with an overlap: the old token stays valid until `retires_at` (microseconds since the
-- epoch, as every time here), then the service revokes it itself. `replaced_by` names the token
-- that replaces it.
alter table access_tokens add column retires_at integer;
alter table access_tokens add column replaced_by text;
create index access_tokens_retiring on access_tokens (retires_at)
    where retires_at is not null and revoked_at is null;
