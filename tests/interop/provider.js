// A certified OpenID provider (panva's oidc-provider) on loopback, set up like Microsoft
// Entra ID for app-to-app calls: the client-credentials grant, JWT access tokens carrying
// `roles`, `azp` and `azpacr`, and a signing key that can be rotated on request.
//
//   node provider.js [--port N] [--client-certificate client.pem]
//
// Prints one line `issuer http://127.0.0.1:PORT` on stdout once it serves. Besides the
// provider's own endpoints (discovery, /jwks, /token) it answers, on the same port:
//   POST /_interop/rotate[?publish=both|new]
//       sign with a new key (a new kid) from now on, and publish the new and the previous
//       key (default) or the new one only;
//   GET /_interop/stats
//       the signing kid, how often discovery and the JWKS were fetched, and one entry per
//       token request: client, how it authenticated, the assertion's header and claims, outcome.
// Test fixture only: fixed client secrets, in-memory state, loopback only.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

// The protected API, as an Entra app registration's Application ID URI.
const API = 'api://b178f3a5-7588-492a-924f-72d7887b7e48';
const API_SCOPES = 'orders.read orders.write';
// Both secret clients share it: every character RFC 6749 §2.3.1 makes clients encode.
const SECRET = 's3cr:t%+ &=~';

// The registered clients: how each must authenticate, and the app roles granted to it.
// `azpacr` follows Entra ID: "1" for a secret, "2" for a certificate.
const CLIENTS = [
  { client_id: 'interop-basic', method: 'client_secret_basic', roles: ['Orders.Read'] },
  { client_id: 'interop-post', method: 'client_secret_post', roles: ['Orders.Read', 'Orders.Write'] },
  { client_id: 'interop-cert', method: 'private_key_jwt', alg: 'PS256', roles: ['Orders.Read', 'Orders.Write'] },
  { client_id: 'interop-cert-rs256', method: 'private_key_jwt', alg: 'RS256', roles: ['Orders.Read'] },
];

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'client-certificate': { type: 'string' },
  },
});

const stats = { discovery_requests: 0, jwks_requests: 0, token_requests: [] };

// The certificate's public key as a JWK, for the private_key_jwt clients.
function certificateJwk(file) {
  const cert = new X509Certificate(readFileSync(file));
  const jwk = cert.publicKey.export({ format: 'jwk' });
  const x5tS256 = Buffer.from(cert.fingerprint256.replaceAll(':', ''), 'hex').toString('base64url');
  return { ...jwk, use: 'sig', 'x5t#S256': x5tS256 };
}

function registeredClients() {
  const jwk = args['client-certificate'] && certificateJwk(args['client-certificate']);
  return CLIENTS.filter((c) => c.method !== 'private_key_jwt' || jwk).map((c) => ({
    client_id: c.client_id,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: c.method,
    ...(c.method === 'private_key_jwt'
      ? { jwks: { keys: [jwk] }, token_endpoint_auth_signing_alg: c.alg }
      : { client_secret: SECRET }),
  }));
}

let generation = 0;
function newSigningKey() {
  generation += 1;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `interop-${generation}-${randomBytes(4).toString('hex')}`;
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

// `scope=api://…/.default` names its API, as at Entra ID; `resource=` (RFC 8707) wins.
function resourceFromScope(scope) {
  const entry = (scope || '').split(' ').find((s) => s.endsWith('/.default'));
  return entry && entry.slice(0, -'/.default'.length);
}

// A provider signing with `signing` and publishing `published` (which includes it).
function buildProvider(issuer, clients, signing, published) {
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: published },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    enabledJWA: { clientAuthSigningAlgValues: ['PS256', 'RS256'] },
    responseTypes: ['none'],
    cookies: { keys: [randomBytes(32).toString('hex')] },
    ttl: { ClientCredentials: 3600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf || resourceFromScope(ctx.oidc.params.scope),
        useGrantedResource: () => false,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== API) throw new errors.InvalidTarget(`unknown resource ${resource}`);
          return {
            scope: API_SCOPES,
            audience: API,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256', kid: signing.kid } },
          };
        },
      },
    },
    // Entra ID's app-token claims: the calling app and how it authenticated (the provider
    // accepts only the method a client registered, so that method is the one it used).
    extraTokenClaims: (ctx, token) => {
      const client = CLIENTS.find((c) => c.client_id === token.clientId);
      if (!client) return undefined;
      return {
        azp: client.client_id,
        azpacr: client.method === 'private_key_jwt' ? '2' : '1',
        roles: client.roles,
        idtyp: 'app',
      };
    },
  });
  provider.on('grant.success', (ctx) => record(ctx, 200));
  provider.on('grant.error', (ctx, err) => record(ctx, err.statusCode || 400, err));
  provider.on('server_error', (ctx, err) => record(ctx, 500, err));
  return provider;
}

// One token request as the provider saw it; never a secret or the assertion itself.
function record(ctx, status, err) {
  const params = ctx.oidc?.params || {};
  const entry = {
    client_id: ctx.oidc?.client?.clientId ?? params.client_id ?? null,
    method: 'none',
    status,
    grant_type: params.grant_type ?? null,
    scope: params.scope ?? null,
    resource: params.resource ?? null,
  };
  if (ctx.headers.authorization?.toLowerCase().startsWith('basic ')) entry.method = 'client_secret_basic';
  else if (params.client_secret !== undefined) entry.method = 'client_secret_post';
  else if (params.client_assertion !== undefined) {
    entry.method = 'private_key_jwt';
    const [header, claims] = params.client_assertion.split('.').slice(0, 2)
      .map((part) => { try { return JSON.parse(Buffer.from(part, 'base64url')); } catch { return null; } });
    entry.assertion = {
      header,
      claims: claims && { iss: claims.iss, sub: claims.sub, aud: claims.aud, lifetime: claims.exp - claims.iat },
    };
  }
  if (err) {
    entry.error = err.error || err.message;
    entry.error_description = err.error_description;
    entry.error_detail = err.error_detail;
  }
  stats.token_requests.push(entry);
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

let current;
const server = createServer((req, res) => {
  const { pathname, searchParams } = new URL(req.url, 'http://127.0.0.1');
  if (pathname === '/_interop/stats' && req.method === 'GET') {
    return json(res, 200, { ...stats, signing_kid: current.signing.kid });
  }
  if (pathname === '/_interop/rotate' && req.method === 'POST') {
    const publish = searchParams.get('publish') || 'both';
    if (publish !== 'both' && publish !== 'new') return json(res, 400, { error: 'publish: both | new' });
    const signing = newSigningKey();
    const published = publish === 'both' ? [signing, current.signing] : [signing];
    const provider = buildProvider(current.issuer, current.clients, signing, published);
    current = { ...current, signing, handle: provider.callback() };
    return json(res, 200, { kid: signing.kid, published: published.map((k) => k.kid) });
  }
  if (pathname === '/.well-known/openid-configuration') stats.discovery_requests += 1;
  if (pathname === '/jwks') stats.jwks_requests += 1;
  return current.handle(req, res);
});

server.listen(Number(args.port), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const signing = newSigningKey();
  const clients = registeredClients();
  const provider = buildProvider(issuer, clients, signing, [signing]);
  current = { issuer, clients, signing, handle: provider.callback() };
  console.log(`issuer ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
