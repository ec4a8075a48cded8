-- Audit events name the type of the token created, and for contact identification tokens (minted,
-- never stored, so their `created` event is their only trace) the contact and surface they
-- identify. Null on events written before, and where they do not apply.
alter table audit_events add column token_type text;
alter table audit_events add column contact_id text;
alter table audit_events add column surface_id text;
