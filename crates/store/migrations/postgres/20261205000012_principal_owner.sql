-- Ownership names the principal fully: the issuer that vouched for the creating user, its home
-- organization and its user id, hashed into an owner key (`p1_...`, see `owner_key` in the domain
-- crate). Two identity providers, or two organizations, with the same user id never share tokens;
-- `created_by` stays the user id the contract shows.
--
-- Rows written before this carry a legacy key, `legacy:{characters of org}:{org}:{user}`, with the
-- home organization their `created` event names (the organization of the row when it names none):
-- the issuer was never recorded. The same user, acting from that organization, manages them still.
alter table access_tokens add column owner text;

update access_tokens t
    set owner = 'legacy:' || length(h.home) || ':' || h.home || ':' || t.created_by
    from (select a.id,
                 coalesce((select e.actor_home_org_id from audit_events e
                           where e.org_id = a.org_id and e.token_id = a.id
                             and e.action = 'created' and e.actor_user_id = a.created_by
                             and e.actor_home_org_id is not null
                           limit 1),
                          a.org_id) as home
          from access_tokens a) h
    where h.id = t.id;

alter table access_tokens alter column owner set not null;

-- An audit event's `token_owner` becomes its token's owner key, so a member lists the events of
-- the tokens its principal owns. Events of tokens without a row (contact identification, never
-- stored; deleted rows) get the legacy key of the user they named.
update audit_events e set token_owner = t.owner
    from access_tokens t
    where t.id = e.token_id and e.token_owner is not null;

update audit_events e
    set token_owner = 'legacy:'
        || length(case when e.action = 'created' and e.actor_user_id = e.token_owner
                       then coalesce(e.actor_home_org_id, e.org_id) else e.org_id end)
        || ':'
        || (case when e.action = 'created' and e.actor_user_id = e.token_owner
                 then coalesce(e.actor_home_org_id, e.org_id) else e.org_id end)
        || ':' || e.token_owner
    where e.token_owner is not null
      and e.token_owner not like 'legacy:%'
      and not exists (select 1 from access_tokens t where t.id = e.token_id);

-- A member's own tokens: one range scan (two keys while legacy rows remain), as before.
drop index access_tokens_org_creator;
create index access_tokens_org_owner on access_tokens (org_id, owner, created_at desc, id desc);
