-- Ownership names the principal fully, as on PostgreSQL (see the migration of the same name
-- there): `owner` is the owner key, legacy rows get `legacy:{characters of org}:{org}:{user}`.
alter table access_tokens add column owner text not null default '';

update access_tokens
    set owner = 'legacy:'
        || length(coalesce((select e.actor_home_org_id from audit_events e
                            where e.org_id = access_tokens.org_id
                              and e.token_id = access_tokens.id and e.action = 'created'
                              and e.actor_user_id = access_tokens.created_by
                              and e.actor_home_org_id is not null
                            limit 1), org_id))
        || ':'
        || coalesce((select e.actor_home_org_id from audit_events e
                     where e.org_id = access_tokens.org_id
                       and e.token_id = access_tokens.id and e.action = 'created'
                       and e.actor_user_id = access_tokens.created_by
                       and e.actor_home_org_id is not null
                     limit 1), org_id)
        || ':' || created_by;

update audit_events
    set token_owner = (select t.owner from access_tokens t where t.id = audit_events.token_id)
    where token_owner is not null
      and exists (select 1 from access_tokens t where t.id = audit_events.token_id);

update audit_events
    set token_owner = 'legacy:'
        || length(case when action = 'created' and actor_user_id = token_owner
                       then coalesce(actor_home_org_id, org_id) else org_id end)
        || ':'
        || (case when action = 'created' and actor_user_id = token_owner
                 then coalesce(actor_home_org_id, org_id) else org_id end)
        || ':' || token_owner
    where token_owner is not null
      and token_owner not like 'legacy:%'
      and token_owner not like 'p1\_%' escape '\'
      and not exists (select 1 from access_tokens t where t.id = audit_events.token_id);

drop index access_tokens_org_creator;
create index access_tokens_org_owner on access_tokens (org_id, owner, created_at desc, id desc);
