-- Rotation with an overlap: the old token stays valid until `retires_at`, then the service revokes
-- it itself (whichever replica gets there first; the update's `revoked_at is null` makes it once).
-- `replaced_by` names the token that replaces it.
alter table access_tokens add column retires_at timestamptz;
alter table access_tokens add column replaced_by text;
-- What is due: the few rotating tokens, read by every replica's retirement pass.
create index access_tokens_retiring on access_tokens (retires_at)
    where retires_at is not null and revoked_at is null;
