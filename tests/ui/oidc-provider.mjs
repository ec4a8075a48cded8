// A small OpenID Connect provider on loopback for the settings page's sign-in test: discovery,
// keys, an authorization endpoint that signs "oidc-user" in at once, and a token endpoint that
// checks the PKCE verifier (S256) and answers an RS256 ID token. PORT and CLIENT_ID from the
// environment; prints "ready" once it listens.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';

const PORT = Number(process.env.PORT);
const CLIENT_ID = process.env.CLIENT_ID;
const ISSUER = `http://127.0.0.1:${PORT}`;
const KID = 'settings-page-test';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };
const codes = new Map();
const b64 = (data) => Buffer.from(data).toString('base64url');

function idToken(claims) {
  const signed = `${b64(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: KID }))}.${b64(JSON.stringify(claims))}`;
  return `${signed}.${sign('sha256', Buffer.from(signed), privateKey).toString('base64url')}`;
}

function json(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body));
}

createServer((request, response) => {
  const url = new URL(request.url, ISSUER);
  if (url.pathname === '/.well-known/openid-configuration') {
    return json(response, 200, {
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/authorize`,
      token_endpoint: `${ISSUER}/token`,
      jwks_uri: `${ISSUER}/jwks`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
  }
  if (url.pathname === '/jwks') return json(response, 200, { keys: [jwk] });
  if (url.pathname === '/authorize') {
    const q = url.searchParams;
    if (q.get('client_id') !== CLIENT_ID || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
      return json(response, 400, { error: 'invalid_request' });
    }
    const code = b64(randomBytes(16));
    codes.set(code, { challenge: q.get('code_challenge'), nonce: q.get('nonce'), redirect: q.get('redirect_uri') });
    const back = new URL(q.get('redirect_uri'));
    back.searchParams.set('code', code);
    back.searchParams.set('state', q.get('state'));
    response.writeHead(302, { location: back.toString() });
    return response.end();
  }
  if (url.pathname === '/token' && request.method === 'POST') {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const form = new URLSearchParams(body);
      const grant = codes.get(form.get('code'));
      codes.delete(form.get('code'));
      const verified =
        grant &&
        form.get('grant_type') === 'authorization_code' &&
        form.get('client_id') === CLIENT_ID &&
        form.get('redirect_uri') === grant.redirect &&
        createHash('sha256').update(form.get('code_verifier') || '').digest('base64url') === grant.challenge;
      if (!verified) return json(response, 400, { error: 'invalid_grant' });
      const now = Math.floor(Date.now() / 1000);
      return json(response, 200, {
        token_type: 'Bearer',
        id_token: idToken({
          iss: ISSUER, aud: CLIENT_ID, sub: 'oidc-user', iat: now, exp: now + 600, nonce: grant.nonce,
          email: 'oidc-user@example.com', email_verified: true, preferred_username: 'oidc-user',
          roles: ['owner'],
        }),
      });
    });
    return undefined;
  }
  return json(response, 404, { error: 'not_found' });
}).listen(PORT, '127.0.0.1', () => console.log('ready'));
