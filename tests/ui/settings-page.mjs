// The settings page as a person uses it, in Debian's Chromium driven by Playwright: sign in with
// a token, create one (shown once, then gone from the page), see it listed, rotate it with an
// overlap, revoke it, keyboard only where a person could, and at 360 px wide. Run by
// scripts/test-ui.sh with BASE (the service) and TOKEN (an admin caller of organization 1).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE;
const TOKEN = process.env.TOKEN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
assert.ok(BASE && TOKEN, 'BASE and TOKEN are set');

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  // Root in a container has no user namespace for Chromium's sandbox.
  args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
});
const problems = [];
let step = 'start';
const check = (name) => {
  step = name;
  console.log(`settings-page: ${name}`);
};

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // An error answer of the API is the page's to show (a 400 next to its field): only script
  // errors and refusals by the Content-Security-Policy count here.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      problems.push(`console: ${m.text()}`);
    }
  });

  check('/ redirects to the page, served with a strict Content-Security-Policy');
  const response = await page.goto(`${BASE}/`);
  assert.equal(new URL(page.url()).pathname, '/ui/');
  const csp = response.headers()['content-security-policy'];
  for (const part of ["script-src 'self'", "connect-src 'self'", "default-src 'none'", 'frame-ancestors https://portal.example.com http://localhost:18622']) {
    assert.ok(csp.includes(part), `CSP has ${part}: ${csp}`);
  }
  assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'), csp);

  check('every control has a label');
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((c) => c.labels.length === 0 && !c.getAttribute('aria-label'))
      .map((c) => c.id || c.outerHTML),
  );
  assert.deepEqual(unlabelled, []);

  check('sign in with the keyboard: the token field has focus');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'bearer');
  await page.fill('#bearer', TOKEN);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#app:not([hidden])');
  // The dev caller is itself a token of the organization: the list shows it.
  await page.locator('#list tbody tr', { hasText: 'dev caller' }).waitFor();
  await page.fill('#filter-name', 'no such token');
  await page.waitForSelector('#no-match:not([hidden])');
  await page.fill('#filter-name', '');
  await page.waitForSelector('#list:not([hidden])');
  await page.focus('#new-token');

  check('create a token from the keyboard; it is shown once');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'new-token');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#create[open]');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'c-name');
  await page.keyboard.type('ci pipeline');
  await page.selectOption('#c-expiry', '30d');
  if (process.env.SCREENSHOTS) {
    await page.screenshot({ path: `${process.env.SCREENSHOTS}/settings-page-create.png` });
  }
  await page.focus('#c-name');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#shown[open]');
  const shown = await page.inputValue('#shown-token');
  assert.match(shown, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
  if (process.env.SCREENSHOTS) {
    await page.screenshot({ path: `${process.env.SCREENSHOTS}/settings-page-shown-once.png` });
  }
  const works = await fetch(`${BASE}/v1/access-tokens`, { headers: { Authorization: `Bearer ${shown}` } });
  assert.equal(works.status, 200, 'the token shown calls the API');
  await page.click('#copy');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, shown, 'Copy puts the token on the clipboard');

  check('closing the dialog leaves no copy of the token in the page');
  await page.click('#shown [data-close]');
  await page.waitForSelector('#shown', { state: 'hidden' });
  const traces = await page.evaluate((token) => {
    const values = [...document.querySelectorAll('input, textarea')].map((c) => c.value).join(' ');
    return {
      inPage: document.documentElement.outerHTML.includes(token) || values.includes(token),
      storage: localStorage.length + sessionStorage.length,
      cookie: document.cookie,
      url: location.href.includes(token),
    };
  }, shown);
  assert.deepEqual(traces, { inPage: false, storage: 0, cookie: '', url: false });
  await page.waitForFunction(() => document.activeElement.id === 'new-token');

  check('the list shows it with its expiry badge');
  const row = page.locator('#list tbody tr', { hasText: 'ci pipeline' });
  await row.waitFor();
  assert.match(await row.textContent(), /api/);
  assert.match(await row.textContent(), /active/);

  check('an API error is shown next to the field it names');
  await page.click('#new-token');
  await page.fill('#c-name', 'a journey');
  await page.selectOption('#c-type', 'journey');
  await page.click('#create-form button[type=submit]');
  await page.waitForSelector('#c-journey .error:not(:empty)');
  assert.match(await page.textContent('#c-journey .error'), /journey_id/);
  await page.keyboard.press('Escape');
  await page.waitForSelector('#create', { state: 'hidden' });

  check('rotate with an overlap: the new token is shown once, the old one is rotating');
  await row.getByRole('button', { name: 'Rotate ci pipeline' }).click();
  await page.waitForSelector('#confirm[open]');
  await page.selectOption('#confirm-extra select', '1h');
  await page.click('#confirm-ok');
  await page.waitForSelector('#shown[open]');
  const rotated = await page.inputValue('#shown-token');
  assert.notEqual(rotated, shown);
  await page.click('#shown [data-close]');
  await page.locator('#list tbody tr', { hasText: 'rotating until' }).waitFor();

  check('revoke, with a confirmation naming the token');
  const active = page.locator('#list tbody tr', { hasText: 'ci pipeline' }).filter({ hasText: 'active' });
  await active.getByRole('button', { name: 'Revoke ci pipeline' }).click();
  await page.waitForSelector('#confirm[open]');
  assert.match(await page.textContent('#confirm-text'), /ci pipeline/);
  await page.click('#confirm-ok');
  await page.waitForSelector('#confirm', { state: 'hidden' });
  await page.selectOption('#filter-status', 'revoked');
  await page.locator('#list tbody tr', { hasText: 'revoked' }).waitFor();
  const gone = await fetch(`${BASE}/v1/access-tokens`, { headers: { Authorization: `Bearer ${rotated}` } });
  assert.equal(gone.status, 401, 'the revoked token is refused');

  check('a token reported by whoever held it says so in the list');
  await page.selectOption('#filter-status', 'active');
  await page.click('#new-token');
  await page.fill('#c-name', 'leaked one');
  await page.selectOption('#c-expiry', '30d');
  await page.click('#create-form button[type=submit]');
  await page.waitForSelector('#shown[open]');
  const leaked = await page.inputValue('#shown-token');
  await page.click('#shown [data-close]');
  const reported = await fetch(`${BASE}/v1/access-tokens/revoke`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `token=${leaked}`,
  });
  assert.equal(reported.status, 200);
  await page.selectOption('#filter-status', 'revoked');
  await page.locator('#list tbody tr', { hasText: 'leaked one' }).filter({ hasText: 'revoked: reported by whoever held it' }).waitFor();

  check('the audit events and the policy tab');
  await page.click('.tab[data-tab="audit"]');
  await page.locator('#audit-list li', { hasText: 'revoked' }).first().waitFor();
  await page.click('.tab[data-tab="policy"]');
  assert.equal(await page.isEnabled('#policy-save'), true, 'an admin edits the policy');


  check('an admin adds a webhook endpoint; its signing secret is shown once');
  await page.click('.tab[data-tab="webhooks"]');
  await page.fill('#w-url', process.env.WEBHOOK_URL);
  await page.click('#webhook-form button[type=submit]');
  await page.waitForSelector('#shown[open]');
  assert.match(await page.inputValue('#shown-token'), /^whsec_/);
  assert.match(await page.textContent('#shown-title'), /signing secret/);
  await page.click('#shown [data-close]');
  await page.waitForSelector('#shown', { state: 'hidden' });
  const endpoint = page.locator('#webhook-list li', { hasText: process.env.WEBHOOK_URL });
  await endpoint.getByRole('button', { name: /^Recent deliveries/ }).click();
  await endpoint.locator('ol li').first().waitFor();

  check('usable at 360 px: nothing wider than the screen');
  await page.click('.tab[data-tab="tokens"]');
  await page.selectOption('#filter-status', 'all');
  await page.setViewportSize({ width: 360, height: 740 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `the page is ${width} px wide at 360`);
  if (process.env.SCREENSHOTS) {
    await page.screenshot({ path: `${process.env.SCREENSHOTS}/settings-page-360.png`, fullPage: true });
  }

  check('sign out forgets the token');
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])');
  assert.equal(await page.evaluate((t) => document.documentElement.outerHTML.includes(t), TOKEN), false);

  check('sign in at the identity provider (authorization code flow with PKCE)');
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${BASE}/ui/`);
  const oidc = page.locator('#oidc-sign-in');
  await oidc.waitFor();
  assert.match(await oidc.textContent(), /Sign in with 127\.0\.0\.1/);
  await oidc.click();
  await page.waitForSelector('#app:not([hidden])');
  assert.equal(await page.textContent('#user'), 'oidc-user@example.com');
  assert.equal(new URL(page.url()).search, '', 'the code leaves the address bar');
  assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
  await page.locator('#list:not([hidden]), #empty:not([hidden])').first().waitFor();
  await page.click('#new-token');
  await page.fill('#c-name', 'made after an OIDC sign-in');
  await page.click('#create-form button[type=submit]');
  await page.waitForSelector('#shown[open]');
  await page.click('#shown [data-close]');
  await page.locator('#list tbody tr', { hasText: 'made after an OIDC sign-in' }).waitFor();
  assert.match(
    await page.locator('#list tbody tr', { hasText: 'made after an OIDC sign-in' }).textContent(),
    /1:owner/,
  );

  check('the development sign-in (embedded store, this machine); a token of each listed type');
  await page.goto(`${BASE}/ui/`);
  await page.waitForSelector('#dev-form:not([hidden])');
  await page.fill('#dev-org', '7');
  await page.fill('#dev-user', 'dev');
  await page.fill('#dev-roles', 'owner, viewer');
  await page.click('#dev-form button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
  assert.equal(await page.textContent('#user'), 'dev');
  for (const [type, extra] of [['api', null], ['app', null], ['journey', ['#c-journey-id', 'j-1']], ['portal', ['#c-portal-id', 'p-1']]]) {
    await page.click('#new-token');
    await page.fill('#c-name', `a ${type} token`);
    await page.selectOption('#c-type', type);
    if (extra) await page.fill(extra[0], extra[1]);
    // Within the development caller's own week.
    await page.selectOption('#c-expiry', 'custom');
    await page.fill('#c-days', '2');
    await page.click('#create-form button[type=submit]');
    await page.waitForSelector('#shown[open]');
    const made = await page.inputValue('#shown-token');
    if (type === 'api' || type === 'app') {
      const calls = await fetch(`${BASE}/v1/access-tokens`, { headers: { Authorization: `Bearer ${made}` } });
      assert.equal(calls.status, 200, `the ${type} token calls the API`);
    }
    await page.click('#shown [data-close]');
    const listed = page.locator('#list tbody tr', { hasText: `a ${type} token` });
    await listed.waitFor();
    assert.match(await listed.textContent(), /expires in 2 days/);
  }

  check('filter and page through 250 tokens');
  const bulk = process.env.TOKEN;
  for (let i = 0; i < 250; i += 1) {
    const made = await fetch(`${BASE}/v1/access-tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${bulk}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: `bulk ${String(i).padStart(3, '0')}`, expires_in: '30d' }),
    });
    assert.equal(made.status, 201);
  }
  await page.goto(`${BASE}/ui/`);
  await page.fill('#bearer', TOKEN);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
  // The newest 25 are bulk tokens anyway: wait for the filtered answer itself.
  const filtered = page.waitForResponse((r) => r.url().includes('name=bulk'));
  await page.fill('#filter-name', 'bulk');
  await filtered;
  const onlyBulk = (n) => {
    const rows = [...document.querySelectorAll('#list tbody tr')];
    return rows.length === n && rows.every((r) => r.textContent.includes('bulk'));
  };
  await page.waitForFunction(onlyBulk, 25);
  for (let pageNo = 2; pageNo <= 10; pageNo += 1) {
    await page.click('#more');
    await page.waitForFunction(onlyBulk, pageNo * 25);
  }
  assert.equal(await page.isHidden('#more'), true, 'no more after 250');
  if (process.env.SCREENSHOTS) {
    await page.fill('#filter-name', '');
    await page.waitForFunction(() => !document.querySelector('#more').hidden);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: `${process.env.SCREENSHOTS}/settings-page-list.png` });
  }

  check('an embedding portal hands the page a token (postMessage from an allowed origin only)');
  // Two portals on this machine: one UI_FRAME_ANCESTORS names, one it does not.
  const portals = [18622, 18623].map((port) =>
    createServer((_, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(`<!doctype html><title>portal</title><iframe src="${BASE}/ui/" title="tokens"></iframe>`);
    }).listen(port, '127.0.0.1'),
  );
  const portal = await context.newPage();
  await portal.goto('http://localhost:18622/settings');
  const framed = portal.frameLocator('iframe');
  await framed.locator('#bearer').waitFor();
  await portal.waitForTimeout(0);
  await portal.evaluate(
    ([base, token]) => document.querySelector('iframe').contentWindow.postMessage({ type: 'access-tokens:token', token }, base),
    [BASE, TOKEN],
  );
  await framed.locator('#app:not([hidden])').waitFor();
  await portal.goto('http://localhost:18623/settings');
  const blocked = await portal.evaluate(() => new Promise((resolve) => {
    const frame = document.querySelector('iframe');
    frame.addEventListener('load', () => {
      try {
        resolve(frame.contentDocument === null || frame.contentWindow.location.href === 'about:blank' ? 'blocked' : 'loaded');
      } catch {
        resolve('blocked');
      }
    });
    setTimeout(() => resolve('blocked'), 5000);
  }));
  assert.equal(blocked, 'blocked', 'another origin cannot frame the page');
  await portal.close();
  for (const server of portals) server.close();

  assert.deepEqual(problems, [], 'no script error and no CSP violation');
  console.log('settings-page: all checks passed');
} catch (error) {
  console.error(`settings-page: failed at "${step}": ${error.stack || error}`);
  if (process.env.SCREENSHOTS) {
    for (const [i, p] of browser.contexts().flatMap((c) => c.pages()).entries()) {
      await p.screenshot({ path: `${process.env.SCREENSHOTS}/settings-page-failure-${i}.png`, fullPage: true }).catch(() => {});
      console.error(await p.evaluate(() => `rows ${document.querySelectorAll('#list tbody tr').length}, more hidden ${document.querySelector('#more')?.hidden}, status "${document.querySelector('#status')?.textContent}"`).catch(() => ''));
    }
  }
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
