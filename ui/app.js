// The reference "Settings > Access Tokens" page: plain JavaScript over the service's own REST
// API, from the same origin, with the signed-in user's bearer token. The token lives in this
// module's memory only: never in storage, a cookie or the URL. Everything the API answers is
// written with textContent, never as HTML.

const state = {
  token: null,
  claims: {},
  homeOrg: null,
  org: null,
  roles: [],
  next: null,
  admin: false,
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (state.org && state.org !== state.homeOrg) headers['x-epilot-org-id'] = state.org;
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || response.statusText);
  }
  return { data, link: response.headers.get('Link') };
}

function say(text) {
  $('status').textContent = text;
}

/// The claims of a JWT, read without verifying: only to show who is signed in and to offer
/// their roles. The service verifies every call.
function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      Array.from(atob(part), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''),
    );
    const claims = JSON.parse(json);
    return claims && typeof claims === 'object' ? claims : {};
  } catch {
    return {};
  }
}

function rolesOf(claims) {
  const value = claims.assignments;
  if (Array.isArray(value)) return value.filter((r) => typeof r === 'string' && r.includes(':'));
  if (typeof value === 'string') return value.split(/[ ,]+/).filter((r) => r.includes(':'));
  return [];
}

// --- Signing in and out -------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  state.claims = claimsOf(token);
  state.homeOrg = String(state.claims['custom:ivy_org_id'] ?? state.claims.org_id ?? '');
  state.org = state.homeOrg;
  state.roles = rolesOf(state.claims);
  try {
    await api('GET', '/v1/access-tokens?limit=1');
  } catch (error) {
    state.token = null;
    $('bearer-error').textContent = `Not signed in: ${error.message}`;
    return;
  }
  $('bearer').value = '';
  $('bearer-error').textContent = '';
  $('signin').hidden = true;
  $('app').hidden = false;
  $('who').hidden = false;
  $('user').textContent =
    state.claims['cognito:username'] || state.claims.email || state.claims.user_id || state.claims.sub || '';
  const orgs = [...new Set([state.homeOrg, ...state.roles.map((r) => r.split(':')[0])])].filter(Boolean);
  const select = $('org');
  select.replaceChildren(...orgs.map((o) => new Option(o, o)));
  select.value = state.org;
  select.disabled = orgs.length < 2;
  await enterOrganization();
  $('new-token').focus();
}

function signOut() {
  state.token = null;
  state.claims = {};
  state.roles = [];
  $('list').querySelector('tbody').replaceChildren();
  $('app').hidden = true;
  $('who').hidden = true;
  $('signin').hidden = false;
  say('Signed out.');
  $('bearer').focus();
offerSignIns();
finishOidc();
}

async function enterOrganization() {
  const adminProbe = await api('GET', '/v1/access-tokens/webhooks').then(
    () => true,
    () => false,
  );
  state.admin = adminProbe;
  $('creator-filter').hidden = !state.admin;
  $('webhooks-tab').hidden = !state.admin;
  await loadTokens();
  await loadPolicy();
}

// --- Signing in at the identity provider (authorization code flow with PKCE) --------------

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomText() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

// The PKCE verifier, state and nonce must outlive the trip to the identity provider: they are
// kept in sessionStorage for that trip only, and removed as soon as the page is back. The bearer
// token itself never is.
const PENDING = 'access-tokens-sign-in';

async function startOidc(config) {
  const verifier = randomText();
  const pending = { verifier, state: randomText(), nonce: randomText() };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const url = new URL(config.authorization_endpoint);
  for (const [key, value] of Object.entries({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  })) {
    url.searchParams.set(key, value);
  }
  location.assign(url.toString());
}

/// Back from the identity provider: redeems the code (through the service) for an ID token.
async function finishOidc() {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  // The code leaves the address bar and the history at once.
  history.replaceState(null, '', location.pathname);
  if (params.has('error')) {
    $('oidc-error').textContent = `The identity provider did not sign you in: ${params.get('error')}`;
    return false;
  }
  if (!pending || params.get('state') !== pending.state) {
    $('oidc-error').textContent = 'The sign-in answer does not belong to this page: sign in again.';
    return false;
  }
  try {
    const response = await fetch('/ui/sign-in', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code: params.get('code'), code_verifier: pending.verifier }),
      cache: 'no-store',
      credentials: 'omit',
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    if (claimsOf(answer.id_token).nonce !== pending.nonce) throw new Error('the ID token is not for this sign-in (nonce)');
    await signIn(answer.id_token);
    return true;
  } catch (error) {
    $('oidc-error').textContent = `Not signed in: ${error.message}`;
    return false;
  }
}

async function developmentSignIn(event) {
  event.preventDefault();
  const roles = $('dev-roles').value.split(',').map((r) => r.trim()).filter(Boolean);
  try {
    const response = await fetch('/ui/dev-sign-in', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ organization: $('dev-org').value.trim(), user: $('dev-user').value.trim(), roles }),
      cache: 'no-store',
      credentials: 'omit',
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    $('dev-error').textContent = '';
    await signIn(answer.token);
  } catch (error) {
    $('dev-error').textContent = `Not signed in: ${error.message}`;
  }
}

/// An embedding portal (an origin of UI_FRAME_ANCESTORS) hands the page its user's token:
/// `parent.postMessage({type: 'access-tokens:token', token}, pageOrigin)`.
function acceptTokensFrom(embedders) {
  window.addEventListener('message', (event) => {
    if (!embedders.includes(event.origin)) return;
    const data = event.data;
    if (data && data.type === 'access-tokens:token' && typeof data.token === 'string') signIn(data.token);
  });
}

async function offerSignIns() {
  let answer = {};
  try {
    const response = await fetch('/ui/config.json', { cache: 'no-store' });
    if (response.ok) answer = await response.json();
  } catch {
    answer = {};
  }
  acceptTokensFrom(Array.isArray(answer.embedders) ? answer.embedders : []);
  if (answer.development) {
    $('dev-form').hidden = false;
    $('dev-form').addEventListener('submit', developmentSignIn);
  }
  const config = answer.oidc;
  if (!config) return;
  $('oidc').hidden = false;
  $('oidc-sign-in').textContent = `Sign in with ${new URL(config.issuer).host}`;
  $('oidc-sign-in').addEventListener('click', () => startOidc(config));
}

// --- The list -----------------------------------------------------------------------------

function listQuery() {
  const params = new URLSearchParams();
  const type = $('filter-type').value;
  if (type) params.set('token_type', type);
  params.set('status', $('filter-status').value);
  const name = $('filter-name').value.trim();
  if (name) params.set('name', name);
  const creator = $('filter-creator').value.trim();
  if (creator && state.admin) params.set('created_by', creator);
  params.set('limit', '25');
  return params;
}

function nextFrom(link) {
  const match = link && link.match(/<([^>]+)>;\s*rel="next"/);
  if (!match) return null;
  const url = new URL(match[1], location.href);
  return url.pathname + url.search;
}

async function loadTokens(more = false) {
  const path = more && state.next ? state.next : `/v1/access-tokens?${listQuery()}`;
  // A list asked for later wins: an answer to an earlier request (typing in a filter) is dropped.
  state.listing = (state.listing || 0) + 1;
  const mine = state.listing;
  let page;
  try {
    page = await api('GET', path);
  } catch (error) {
    say(`Could not list the tokens: ${error.message}`);
    return;
  }
  if (mine !== state.listing) return;
  state.next = nextFrom(page.link);
  const body = $('list').querySelector('tbody');
  if (!more) body.replaceChildren();
  for (const item of page.data) body.append(row(item));
  const none = body.children.length === 0;
  const filtered =
    $('filter-type').value || $('filter-status').value !== 'active' || $('filter-name').value.trim() ||
    $('filter-creator').value.trim();
  $('list').hidden = none;
  $('empty').hidden = !(none && !filtered);
  $('no-match').hidden = !(none && filtered);
  $('more').hidden = !state.next;
}

function day(text) {
  return text ? new Date(text).toLocaleDateString() : '—';
}

function expiryCell(item) {
  const cell = document.createElement('td');
  if (!item.expires_at) {
    cell.textContent = 'never';
    return cell;
  }
  cell.append(day(item.expires_at));
  const days = Math.ceil((new Date(item.expires_at) - Date.now()) / 86_400_000);
  const badge = document.createElement('span');
  badge.className = 'badge';
  if (days <= 0) {
    badge.textContent = 'expired';
    badge.classList.add('bad');
  } else if (days <= 14) {
    badge.textContent = `expires in ${days} day${days === 1 ? '' : 's'}`;
    badge.classList.add('warn');
  }
  if (badge.textContent) cell.append(' ', badge);
  return cell;
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function button(label, onClick, title) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (title) b.setAttribute('aria-label', title);
  b.addEventListener('click', onClick);
  return b;
}

function row(item) {
  const tr = document.createElement('tr');
  const name = document.createElement('th');
  name.scope = 'row';
  name.textContent = item.name;
  tr.append(
    name,
    cell(item.token_type),
    cell((item.assignments || []).join(', ') || '—'),
    cell(day(item.created_at)),
    cell(item.created_by),
    expiryCell(item),
    cell(item.last_used || '—'),
  );
  const status = cell(item.status);
  if (item.status === 'rotating' && item.retires_at) {
    status.textContent = `rotating until ${new Date(item.retires_at).toLocaleString()}`;
  }
  if (item.status === 'revoked') explainRevocation(item, status);
  tr.append(status);
  const cellOfActions = document.createElement('td');
  cellOfActions.className = 'actions-cell';
  const actions = document.createElement('div');
  actions.className = 'row-actions';
  cellOfActions.append(actions);
  const label = (verb) => `${verb} ${item.name}`;
  if (item.status !== 'revoked') {
    actions.append(button('Revoke', () => revoke(item), label('Revoke')));
    if (['api', 'app', 'assume', 'journey', 'portal'].includes(item.token_type) && item.status === 'active') {
      actions.append(button('Rotate', () => rotate(item), label('Rotate')));
    }
    if (item.status === 'suspended') {
      actions.append(button('Resume', () => setSuspended(item, false), label('Resume')));
    } else {
      actions.append(button('Suspend', () => setSuspended(item, true), label('Suspend')));
    }
  }
  actions.append(button('Events', () => showEvents(item), label('Events of')));
  tr.append(cellOfActions);
  // On a narrow screen each row is a card: every value says what it is.
  const headings = [...document.querySelectorAll('#list thead th')].map((th) => th.textContent);
  [...tr.children].forEach((td, i) => td.setAttribute('data-label', headings[i] || ''));
  return tr;
}

/// Why a revoked token ended, from its `revoked` event: found leaked (and where), reported by
/// whoever held it, its people gone, rotated, or below a revoked token.
async function explainRevocation(item, status) {
  let events;
  try {
    events = (await api('GET', `/v1/access-tokens/audit-events?token_id=${encodeURIComponent(item.id)}&limit=10`)).data;
  } catch {
    return;
  }
  const revoked = events.find((e) => e.action === 'revoked');
  const details = (revoked && revoked.details) || {};
  const reasons = {
    reported: 'reported by whoever held it',
    offboarded: 'its creator left',
    rotated: 'replaced by rotation',
    credential_deleted: 'its federated credential was deleted',
  };
  let why = null;
  if (details.reason === 'leaked') {
    why = details.leak && details.leak.url ? `found at ${details.leak.url}` : 'found leaked';
  } else if (reasons[details.reason]) {
    why = reasons[details.reason];
  } else if (revoked && revoked.related_token_id) {
    why = 'with the token it was made from';
  }
  if (why) status.textContent = `revoked: ${why}`;
}

// --- Dialogs ------------------------------------------------------------------------------

let opener = null;

function open(dialog) {
  opener = document.activeElement;
  dialog.showModal();
}

/// The token shown once leaves the page with its dialog, at once (the dialog's `close` event
/// comes a task later).
function forgetShown(dialog) {
  if (dialog.id === 'shown') $('shown-token').value = '';
}

function close(dialog) {
  forgetShown(dialog);
  dialog.close();
}

function onClosed(dialog) {
  forgetShown(dialog);
  if (opener && document.contains(opener)) opener.focus();
  opener = null;
}

function showOnce(token, what = 'token') {
  const dialog = $('shown');
  const secret = what === 'secret';
  $('shown-title').textContent = secret ? 'Copy the signing secret now' : 'Copy your token now';
  $('shown-label').textContent = secret ? 'Signing secret' : 'Token';
  $('shown-warning').textContent = secret
    ? 'It will not be shown again. The receiver verifies every delivery with it.'
    : 'It will not be shown again. Store it where it will be used; anyone who holds it acts with its roles until it expires or is revoked.';
  $('shown-token').value = token;
  open(dialog);
  $('shown-token').focus();
  $('shown-token').select();
}

function confirmDialog(title, text, extra, verb) {
  return new Promise((resolve) => {
    const dialog = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-extra').replaceChildren(...extra);
    $('confirm-ok').textContent = verb;
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    open(dialog);
  });
}

// --- Actions ------------------------------------------------------------------------------

async function revoke(item) {
  const cascade = document.createElement('label');
  const box = document.createElement('input');
  box.type = 'checkbox';
  cascade.append(box, ' Also revoke every token created from it');
  const sure = await confirmDialog(
    'Revoke a token',
    `Revoke "${item.name}"? It is refused everywhere within seconds, for good.`,
    [cascade],
    'Revoke',
  );
  if (!sure) return;
  try {
    await api('DELETE', `/v1/access-tokens/${encodeURIComponent(item.id)}${box.checked ? '?cascade=true' : ''}`);
    say(`Revoked "${item.name}".`);
  } catch (error) {
    say(`Could not revoke "${item.name}": ${error.message}`);
  }
  await loadTokens();
}

async function rotate(item) {
  const label = document.createElement('label');
  label.textContent = 'Keep the old token valid for ';
  const overlap = document.createElement('select');
  for (const [value, text] of [['0', 'no time: revoke it now'], ['1h', 'an hour'], ['1d', 'a day'], ['7d', 'a week']]) {
    overlap.append(new Option(text, value));
  }
  label.append(overlap);
  const sure = await confirmDialog(
    'Rotate a token',
    `Replace "${item.name}" with a new token of the same roles and lifetime?`,
    [label],
    'Rotate',
  );
  if (!sure) return;
  try {
    const body = overlap.value === '0' ? undefined : { overlap: overlap.value };
    const { data } = await api('POST', `/v1/access-tokens/${encodeURIComponent(item.id)}/rotate`, body);
    await loadTokens();
    showOnce(data.token);
  } catch (error) {
    say(`Could not rotate "${item.name}": ${error.message}`);
  }
}

async function setSuspended(item, suspend) {
  const verb = suspend ? 'suspend' : 'resume';
  try {
    await api('POST', `/v1/access-tokens/${encodeURIComponent(item.id)}/${verb}`);
    say(`${suspend ? 'Suspended' : 'Resumed'} "${item.name}".`);
  } catch (error) {
    say(`Could not ${verb} "${item.name}": ${error.message}`);
  }
  await loadTokens();
}

function eventItem(e) {
  const li = document.createElement('li');
  const who = e.actor ? e.actor.user_id || e.actor.type || '' : '';
  const why = e.details && e.details.reason ? ` (${e.details.reason})` : '';
  li.textContent = `${new Date(e.occurred_at).toLocaleString()}: ${e.action}${why}${who ? ` by ${who}` : ''}`;
  if (e.details && e.details.leak && e.details.leak.url) {
    li.append(' — found at ', e.details.leak.url);
  }
  return li;
}

async function showEvents(item) {
  try {
    const { data } = await api('GET', `/v1/access-tokens/audit-events?token_id=${encodeURIComponent(item.id)}`);
    $('events-title').textContent = `Events of "${item.name}"`;
    $('events-list').replaceChildren(...data.map(eventItem));
    open($('events'));
  } catch (error) {
    say(`Could not read the events: ${error.message}`);
  }
}

// --- Creating -----------------------------------------------------------------------------

function openCreate() {
  const form = $('create-form');
  form.reset();
  for (const p of form.querySelectorAll('.error')) p.textContent = '';
  const inOrg = state.roles.filter((r) => r.startsWith(`${state.org}:`));
  const roles = $('c-roles');
  roles.replaceChildren(roles.querySelector('legend'));
  for (const role of inOrg) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = role;
    label.append(box, ` ${role.slice(state.org.length + 1)}`);
    roles.append(label);
  }
  roles.hidden = inOrg.length === 0;
  typeChanged();
  open($('create'));
  $('c-name').focus();
}

function typeChanged() {
  const type = $('c-type').value;
  $('c-journey').hidden = type !== 'journey';
  $('c-portal').hidden = type !== 'portal';
  // Journey and portal tokens carry no roles of a person.
  $('c-roles').disabled = type === 'journey' || type === 'portal';
  const expiry = $('c-expiry');
  // Journey and portal tokens live a week at most; never is for api and app tokens.
  // The organization's policy: presets past its longest lifetime for the type are not offered.
  const max = state.policy && state.policy.max_expires_in && state.policy.max_expires_in[type];
  for (const option of expiry.options) {
    const days = parseInt(option.value, 10);
    option.disabled =
      (['journey', 'portal'].includes(type) && (option.value === 'never' || days > 7)) ||
      (state.policy && state.policy.require_expiry && option.value === 'never') ||
      (max && (option.value === 'never' || days * 86400 > max));
  }
  if (expiry.selectedOptions[0].disabled) expiry.value = [...expiry.options].find((o) => !o.disabled).value;
  $('c-custom').hidden = expiry.value !== 'custom';
}

function fieldOf(message) {
  for (const field of ['journey_id', 'portal_id', 'expires_in', 'assignments', 'token_type', 'name']) {
    if (message.includes(field)) return field;
  }
  return '';
}

async function submitCreate(event) {
  event.preventDefault();
  const form = $('create-form');
  for (const p of form.querySelectorAll('.error')) p.textContent = '';
  const type = $('c-type').value;
  const body = { name: $('c-name').value.trim(), token_type: type };
  if (type === 'journey') body.journey_id = $('c-journey-id').value.trim();
  if (type === 'portal') body.portal_id = $('c-portal-id').value.trim();
  if (!['journey', 'portal'].includes(type)) {
    const chosen = [...$('c-roles').querySelectorAll('input:checked')].map((b) => b.value);
    if (chosen.length) body.assignments = chosen;
  }
  const expiry = $('c-expiry').value;
  if (expiry === 'custom') body.expires_in = `${parseInt($('c-days').value, 10)}d`;
  else if (expiry !== 'never') body.expires_in = expiry;
  if ($('c-read-only').checked) body.read_only = true;
  if ($('c-anonymize').checked) body.anonymize = true;
  try {
    const { data } = await api('POST', '/v1/access-tokens', body);
    close($('create'));
    await loadTokens();
    showOnce(data.token);
  } catch (error) {
    const slot = form.querySelector(`.error[data-for="${fieldOf(error.message)}"]`);
    slot.textContent = error.message;
    const control = slot.previousElementSibling;
    if (control && control.focus) control.focus();
  }
}

// --- Policy and audit ---------------------------------------------------------------------

const TYPES = ['api', 'app', 'assume', 'journey', 'portal', 'portal_preview', 'contact_identification'];

async function loadPolicy() {
  try {
    const { data } = await api('GET', '/v1/access-tokens/policy');
    state.policy = data;
  } catch {
    state.policy = null;
    return;
  }
  $('policy-require-expiry').checked = !!state.policy.require_expiry;
  const allowed = state.policy.allowed_token_types;
  const types = $('policy-types');
  types.replaceChildren(types.querySelector('legend'));
  for (const type of TYPES) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = type;
    box.checked = !allowed || allowed.includes(type);
    label.append(box, ` ${type}`);
    types.append(label);
  }
  const max = state.policy.max_expires_in && state.policy.max_expires_in.api;
  $('policy-max-api').value = max ? Math.round(max / 86400) : '';
  for (const control of $('policy-form').elements) control.disabled = !state.admin;
}

async function savePolicy(event) {
  event.preventDefault();
  const types = [...$('policy-types').querySelectorAll('input:checked')].map((b) => b.value);
  // The limits this form does not show stay as they are.
  const kept = { ...((state.policy && state.policy.max_expires_in) || {}) };
  delete kept.api;
  const body = {
    require_expiry: $('policy-require-expiry').checked,
    max_expires_in: kept,
  };
  if (types.length !== TYPES.length) body.allowed_token_types = types;
  const days = parseInt($('policy-max-api').value, 10);
  if (days > 0) body.max_expires_in.api = days * 86400;
  try {
    await api('PUT', '/v1/access-tokens/policy', body);
    $('policy-error').textContent = '';
    say('The policy is saved; it holds for every new token from now on.');
    await loadPolicy();
  } catch (error) {
    $('policy-error').textContent = error.message;
  }
}

async function loadAudit() {
  try {
    const { data } = await api('GET', '/v1/access-tokens/audit-events?limit=50');
    $('audit-list').replaceChildren(...data.map(eventItem));
  } catch (error) {
    say(`Could not read the audit events: ${error.message}`);
  }
}

// --- Webhooks (admins) --------------------------------------------------------------------

async function loadWebhooks() {
  let endpoints;
  try {
    endpoints = (await api('GET', '/v1/access-tokens/webhooks')).data;
  } catch (error) {
    say(`Could not read the webhook endpoints: ${error.message}`);
    return;
  }
  $('webhook-list').replaceChildren(...endpoints.map(endpointItem));
}

function endpointItem(endpoint) {
  const li = document.createElement('li');
  const title = document.createElement('h3');
  title.textContent = endpoint.url;
  const about = document.createElement('p');
  const events = endpoint.events.length ? endpoint.events.join(', ') : 'every event';
  about.textContent = `${endpoint.description ? `${endpoint.description}. ` : ''}${events}; ${
    endpoint.enabled ? 'enabled' : 'disabled after failing'
  }${endpoint.failing_since ? `, failing since ${new Date(endpoint.failing_since).toLocaleString()}` : ''}.`;
  const deliveries = document.createElement('ol');
  deliveries.className = 'events';
  const label = (verb) => `${verb} ${endpoint.url}`;
  const actions = document.createElement('div');
  actions.className = 'row-actions';
  actions.append(
    button('Recent deliveries', () => loadDeliveries(endpoint, deliveries), label('Recent deliveries of')),
    button('Remove', () => removeEndpoint(endpoint), label('Remove')),
  );
  li.append(title, about, actions, deliveries);
  return li;
}

async function loadDeliveries(endpoint, list) {
  try {
    const { data } = await api('GET', `/v1/access-tokens/webhooks/${encodeURIComponent(endpoint.id)}/deliveries?limit=20`);
    if (!data.length) {
      const li = document.createElement('li');
      li.textContent = 'No deliveries yet.';
      list.replaceChildren(li);
      return;
    }
    list.replaceChildren(
      ...data.map((d) => {
        const li = document.createElement('li');
        const answer = d.response_status ? `, answered ${d.response_status}` : d.error ? `, ${d.error}` : '';
        li.textContent = `${new Date(d.created_at).toLocaleString()}: ${d.event_type} ${d.status} after ${d.attempts} attempt${
          d.attempts === 1 ? '' : 's'
        }${answer} `;
        li.append(
          button('Send again', async () => {
            try {
              await api('POST', `/v1/access-tokens/webhooks/${encodeURIComponent(endpoint.id)}/deliveries/${d.id}/redeliver`);
              say('Queued again.');
              await loadDeliveries(endpoint, list);
            } catch (error) {
              say(`Could not send it again: ${error.message}`);
            }
          }, `Send ${d.event_type} again`),
        );
        return li;
      }),
    );
  } catch (error) {
    say(`Could not read the deliveries: ${error.message}`);
  }
}

async function removeEndpoint(endpoint) {
  const sure = await confirmDialog('Remove a webhook endpoint', `Stop telling ${endpoint.url}? Its pending deliveries are dropped.`, [], 'Remove');
  if (!sure) return;
  try {
    await api('DELETE', `/v1/access-tokens/webhooks/${encodeURIComponent(endpoint.id)}`);
    say(`Removed ${endpoint.url}.`);
  } catch (error) {
    say(`Could not remove it: ${error.message}`);
  }
  await loadWebhooks();
}

async function addEndpoint(event) {
  event.preventDefault();
  const body = { url: $('w-url').value.trim() };
  const description = $('w-description').value.trim();
  if (description) body.description = description;
  try {
    const { data } = await api('POST', '/v1/access-tokens/webhooks', body);
    $('webhook-error').textContent = '';
    $('webhook-form').reset();
    await loadWebhooks();
    showOnce(data.secret, 'secret');
  } catch (error) {
    $('webhook-error').textContent = error.message;
    $('w-url').focus();
  }
}

function showTab(name) {
  for (const tab of document.querySelectorAll('.tab')) {
    const current = tab.dataset.tab === name;
    if (current) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
    $(tab.dataset.tab).hidden = !current;
  }
  if (name === 'audit') loadAudit();
  if (name === 'webhooks') loadWebhooks();
  if (name === 'policy') loadPolicy();
}

// --- Wiring -------------------------------------------------------------------------------

function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

$('signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('bearer').value.trim();
  if (token) signIn(token);
});
$('signout').addEventListener('click', signOut);
$('org').addEventListener('change', () => {
  state.org = $('org').value;
  enterOrganization();
});
$('new-token').addEventListener('click', openCreate);
$('c-type').addEventListener('change', typeChanged);
$('c-expiry').addEventListener('change', typeChanged);
$('create-form').addEventListener('submit', submitCreate);
$('policy-form').addEventListener('submit', savePolicy);
$('webhook-form').addEventListener('submit', addEndpoint);
$('more').addEventListener('click', () => loadTokens(true));
for (const id of ['filter-type', 'filter-status']) $(id).addEventListener('change', () => loadTokens());
for (const id of ['filter-name', 'filter-creator']) $(id).addEventListener('input', debounce(() => loadTokens(), 250));
for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => showTab(tab.dataset.tab));
for (const dialog of document.querySelectorAll('dialog')) {
  dialog.addEventListener('close', () => onClosed(dialog));
  dialog.addEventListener('cancel', () => forgetShown(dialog));
  for (const b of dialog.querySelectorAll('[data-close]')) {
    b.addEventListener('click', () => close(dialog));
  }
}
$('copy').addEventListener('click', async () => {
  const text = $('shown-token').value;
  try {
    await navigator.clipboard.writeText(text);
    say('Copied. Close the dialog once it is stored.');
  } catch {
    $('shown-token').select();
    say('Select the token and copy it with your keyboard.');
  }
});
$('bearer').focus();
offerSignIns();
finishOidc();
