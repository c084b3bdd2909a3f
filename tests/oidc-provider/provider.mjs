// Test-only OpenID Provider for Portcullis integration tests.
//
//   node tests/oidc-provider/provider.mjs CONFIG.json
//
// Wraps the certified `oidc-provider` package. Prints exactly one line to
// stdout once listening: {"issuer":"http://HOST:PORT"}. Everything else goes
// to stderr. Exits on SIGTERM/SIGINT and when stdin reaches EOF / closes.
// See README.md in this folder for the config format and the HTTP sequences.
//
// Clients are served through the adapter (the `Client` model reads a mutable
// in-memory map), not through oidc-provider's static `clients` option, so
// that with `"testEndpoints": true` they can be replaced at runtime with
// `PUT /__test/clients` (the tests learn the gateway's URIs only after the OP
// is up).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

// oidc-provider prints NOTICEs with console.info (stdout). stdout is reserved
// for the single issuer line, so route every console method to stderr.
for (const m of ['log', 'info', 'debug']) {
  console[m] = (...args) => console.error(...args);
}

const { default: Provider } = await import('oidc-provider');
// The development in-memory adapter of oidc-provider itself (pinned version),
// used for every model except `Client`.
const { createMemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');

function die(msg) {
  process.stderr.write(`oidc-test-provider: ${msg}\n`);
  process.exit(2);
}

const configPath = process.argv[2];
if (!configPath) die('usage: node provider.mjs CONFIG.json');

let config;
try {
  config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
} catch (err) {
  die(`cannot read config ${configPath}: ${err.message}`);
}

const host = config.host ?? '127.0.0.1';
const port = Number(config.port ?? 0);
const initialClients = config.clients ?? [];
const accounts = config.accounts ?? {};
const pkceRequired = config.pkceRequired ?? true;
const testEndpoints = config.testEndpoints === true;

// ---------------------------------------------------------------------------
// Lifecycle: exit on SIGTERM/SIGINT and when the parent's stdin pipe closes.
// ---------------------------------------------------------------------------
let server;
let exiting = false;
function shutdown(reason) {
  if (exiting) return;
  exiting = true;
  process.stderr.write(`oidc-test-provider: shutting down (${reason})\n`);
  if (server) {
    server.close();
    server.closeAllConnections?.();
  }
  // Do not wait for keep-alive sockets etc.
  setTimeout(() => process.exit(0), 50).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
// A parent that dies closes our stdin: exit then, so no provider is left
// behind. Spawn with a *piped* stdin and keep the write end open (a null
// stdin is EOF at once). OIDC_TEST_PROVIDER_IGNORE_STDIN=1 turns this off.
if (process.env.OIDC_TEST_PROVIDER_IGNORE_STDIN !== '1') {
  process.stdin.on('end', () => shutdown('stdin end'));
  process.stdin.on('close', () => shutdown('stdin close'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume(); // start reading so that 'end' fires on EOF
}

// ---------------------------------------------------------------------------
// Small HTML helpers for our own interaction pages.
// ---------------------------------------------------------------------------
function esc(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>
${body}
</body>
</html>
`;
}

function loginPage(uid, { error, login = '', clientId = '' } = {}) {
  return page('Sign in', `<h1>Sign in</h1>
<p id="client">client: ${esc(clientId)}</p>
${error ? `<p id="error" class="error">${esc(error)}</p>` : ''}
<form id="login-form" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label>Username <input type="text" name="login" id="login" value="${esc(login)}" autofocus required></label>
  <label>Password <input type="password" name="password" id="password" required></label>
  <button type="submit" id="submit">Sign in</button>
</form>`);
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(html));
  res.end(html);
}

async function readBody(req, limit) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readForm(req) {
  return new URLSearchParams(await readBody(req, 64 * 1024));
}

// ---------------------------------------------------------------------------
// Start listening first: the issuer needs the real port.
// ---------------------------------------------------------------------------
let handler = (req, res) => send(res, 503, page('starting', 'starting'));
server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, host, resolve);
});
const actualPort = server.address().port;
const hostForUrl = host.includes(':') ? `[${host}]` : host;
const issuer = `http://${hostForUrl}:${actualPort}`;

// ---------------------------------------------------------------------------
// oidc-provider configuration.
// ---------------------------------------------------------------------------
const ttl = {
  AccessToken: 600,
  AuthorizationCode: 60,
  IdToken: 600,
  Interaction: 600,
  Session: 3600,
  Grant: 3600,
  RefreshToken: 3600,
  ClientCredentials: 600,
  ...(config.ttl ?? {}),
};

const { privateKey: signingKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...signingKey.export({ format: 'jwk' }),
  kid: `op-rs256-${crypto.randomBytes(6).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

async function autoGrant(ctx) {
  // Automatic consent: reuse the session's grant for this client (or make a
  // new one) and add every OIDC scope / claim the current request asks for.
  const { oidc } = ctx;
  const { Grant } = oidc.provider;
  const accountId = oidc.session.accountId;
  const clientId = oidc.client.clientId;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
  let grant = grantId ? await Grant.find(grantId) : undefined;
  if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
    grant = new Grant({ accountId, clientId });
  }
  const scopes = [...oidc.requestParamOIDCScopes];
  if (scopes.length) grant.addOIDCScope(scopes.join(' '));
  const claims = [...oidc.requestParamClaims];
  if (claims.length) grant.addOIDCClaims(claims);
  await grant.save();
  return grant;
}

// ---------------------------------------------------------------------------
// Clients: a mutable registry served through the adapter's `Client` model.
//
// oidc-provider (lib/models/client.js, Client.find) caches *static* clients
// (the `clients` option) once per client_id for the provider's lifetime, so
// they cannot be changed. Clients returned by the adapter are instead cached
// in an LRU keyed by the SHA-256 of the JSON the adapter returned, so changed
// metadata gives a new Client object (new redirect URIs, new key store, so a
// jwks_uri is fetched again) on the very next Client.find. The `generation`
// marker below changes that JSON on every replace, so even unchanged metadata
// gets a fresh Client (and jwks_uri cache) after a PUT. oidc-provider's client
// schema drops the unrecognised marker key, so it never reaches the Client.
// ---------------------------------------------------------------------------
const GENERATION_KEY = 'x_oidc_test_provider_generation';
const clientRegistry = { byId: new Map(), generation: 0 };

const clientAdapter = {
  async find(id) {
    const metadata = clientRegistry.byId.get(id);
    if (!metadata) return undefined;
    return { ...structuredClone(metadata), [GENERATION_KEY]: clientRegistry.generation };
  },
  async upsert() {
    throw new Error('clients are read-only here (use PUT /__test/clients)');
  },
  async destroy() {
    throw new Error('clients are read-only here (use PUT /__test/clients)');
  },
  async consume() {},
  async findByUid() { return undefined; },
  async findByUserCode() { return undefined; },
  async revokeByGrantId() {},
};

function makeAdapter(clockTolerance) {
  const memory = createMemoryAdapter(clockTolerance);
  // A (non-constructable) factory: oidc-provider calls it once per model.
  return (model) => (model === 'Client' ? clientAdapter : memory(model));
}

const configuration = {
  adapter: makeAdapter(15), // 15 s = oidc-provider's default clockTolerance
  clientAuthMethods: ['client_secret_basic', 'private_key_jwt'],
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: {
    // amr/auth_time ride on the openid scope so they are always in the ID
    // token (otherwise oidc-provider only adds them when requested through
    // the claims parameter / max_age).
    openid: ['sub', 'amr', 'auth_time', 'acr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
    acr: null,
    amr: null,
    auth_time: null,
    iss: null,
    sid: null,
  },
  // Put scope-granted claims in the ID token (the RP does not call userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => pkceRequired },
  // Fresh RS256 signing key per instance (instead of oidc-provider's fixed,
  // public development key).
  jwks: { keys: [signingJwk] },
  cookies: {
    // Cookies are not isolated by port: in a browser or a reqwest cookie jar
    // the gateway on 127.0.0.1:A and this OP on 127.0.0.1:B share cookies.
    // Distinct names keep the OP's cookies from clashing with the RP's.
    names: {
      session: 'op_session',
      interaction: 'op_interaction',
      resume: 'op_interaction_resume',
    },
    keys: [crypto.randomBytes(32).toString('base64url')],
  },
  ttl,
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        // `form` is oidc-provider's <form id="op.logoutForm" method="post"
        // action="ISSUER/session/end/confirm"> with a hidden `xsrf` input.
        ctx.type = 'html';
        ctx.body = page('Sign out', `<h1>Sign out of ${esc(ctx.host)}?</h1>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" id="logout-yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm" id="logout-no">No, stay signed in</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Signed out', '<h1 id="signed-out">Signed out</h1>');
      },
    },
  },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { ...(account.claims ?? {}), sub };
      },
    };
  },
  loadExistingGrant: autoGrant,
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  async renderError(ctx, out, error) {
    process.stderr.write(`oidc-test-provider: error page: ${JSON.stringify(out)}\n`);
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Error</h1>
${Object.entries(out).map(([k, v]) => `<pre id="${esc(k)}">${esc(k)}: ${esc(v)}</pre>`).join('\n')}`);
  },
  // oidc-provider blocks outgoing requests to loopback/private addresses
  // (SSRF protection) by passing an undici `dispatcher`. In tests the RP's
  // back-channel logout endpoint and jwks_uri live on 127.0.0.1, so drop it.
  fetch(url, options) {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
};

let provider;
try {
  provider = new Provider(issuer, configuration);
} catch (err) {
  die(`invalid configuration: ${err.stack || err}`);
}

// Log useful events to stderr.
for (const ev of ['server_error', 'backchannel.error', 'grant.error', 'authorization.error', 'end_session.error', 'interaction.error']) {
  provider.on(ev, (...args) => {
    const err = args.find((a) => a instanceof Error);
    // Full stack only for unexpected server errors; OAuth errors in one line.
    const text = ev === 'server_error' ? (err?.stack || String(err)) : `${err?.message ?? ''}`;
    process.stderr.write(`oidc-test-provider: ${ev}: ${text}${err?.error_description ? ` (${err.error_description})` : ''}\n`);
  });
}
provider.on('backchannel.success', (_ctx, client, accountId, sid) => {
  process.stderr.write(`oidc-test-provider: backchannel logout delivered to ${client.clientId} (sub=${accountId} sid=${sid})\n`);
});

// Checks a whole client list the way oidc-provider checks metadata (its
// client schema, via Client.validate), plus unique non-empty client_ids.
// Returns the new client_id -> metadata map; throws Error with a message.
async function validateClients(list) {
  if (!Array.isArray(list)) throw new Error('clients must be a JSON array of client metadata objects');
  const byId = new Map();
  for (const [i, metadata] of list.entries()) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new Error(`clients[${i}] is not a JSON object`);
    }
    const id = metadata.client_id;
    if (typeof id !== 'string' || !id.length) {
      throw new Error(`clients[${i}]: client_id is mandatory (a non-empty string)`);
    }
    if (byId.has(id)) throw new Error(`clients[${i}]: duplicate client_id ${JSON.stringify(id)}`);
    try {
      // eslint-disable-next-line no-await-in-loop
      await provider.Client.validate(structuredClone(metadata));
    } catch (err) {
      throw new Error(`client ${JSON.stringify(id)}: ${err.message}${err.error_description ? `: ${err.error_description}` : ''}`);
    }
    byId.set(id, structuredClone(metadata));
  }
  return byId;
}

// Atomically replaces the whole set; takes effect for the next request.
function replaceClients(byId) {
  clientRegistry.byId = byId;
  clientRegistry.generation += 1;
}

// Validate clients eagerly so that bad metadata fails at start, not mid-test.
try {
  replaceClients(await validateClients(initialClients));
} catch (err) {
  die(`invalid client metadata: ${err.message}`);
}

// ---------------------------------------------------------------------------
// Our own interaction routes.
// ---------------------------------------------------------------------------
const providerCallback = provider.callback();

async function interactionRoute(req, res, url) {
  const m = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?\/?$/);
  if (!m) return false;
  const [, uid, isLogin] = m;

  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    send(res, 400, page('Error', `<h1>Error</h1><pre id="error">${esc(err.message)}</pre>`));
    return true;
  }
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<h1>Error</h1><pre id="error">interaction uid mismatch</pre>'));
    return true;
  }
  const { prompt, params } = details;

  if (prompt.name === 'consent') {
    // Consent is automatic (normally already satisfied by loadExistingGrant;
    // reached e.g. with prompt=consent or for native clients).
    const grantId = details.grantId;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const d = prompt.details ?? {};
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const newGrantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId: newGrantId } }, { mergeWithLastSubmission: true });
    return true;
  }

  if (!isLogin) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, page('Error', 'method not allowed'));
      return true;
    }
    send(res, 200, loginPage(uid, { clientId: params.client_id }));
    return true;
  }

  if (req.method !== 'POST') {
    send(res, 405, page('Error', 'method not allowed'));
    return true;
  }
  const form = await readForm(req);
  const login = form.get('login') ?? '';
  const password = form.get('password') ?? '';
  const account = Object.hasOwn(accounts, login) ? accounts[login] : undefined;
  const ok = account
    && typeof account.password === 'string'
    && crypto.timingSafeEqual(
      crypto.createHash('sha256').update(password).digest(),
      crypto.createHash('sha256').update(account.password).digest(),
    );
  if (!ok) {
    send(res, 200, loginPage(uid, { error: 'Invalid username or password.', login, clientId: params.client_id }));
    return true;
  }
  const result = {
    login: {
      accountId: login,
      ...(Array.isArray(account.amr) ? { amr: account.amr } : {}),
      ...(account.acr ? { acr: account.acr } : {}),
    },
  };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  return true;
}

// ---------------------------------------------------------------------------
// Test-only control endpoints (only with "testEndpoints": true).
// ---------------------------------------------------------------------------
function sendJson(res, status, value) {
  const body = `${JSON.stringify(value)}\n`;
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

function sendEmpty(res, status) {
  res.statusCode = status;
  res.setHeader('Cache-Control', 'no-store');
  res.end();
}

async function testRoute(req, res, url) {
  const methodNotAllowed = (allow) => {
    res.setHeader('Allow', allow);
    sendJson(res, 405, { error: `method not allowed (allowed: ${allow})` });
  };
  switch (url.pathname) {
    case '/__test/health':
      if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed('GET, HEAD');
      return sendEmpty(res, 204);
    case '/__test/clients': {
      if (req.method === 'GET') return sendJson(res, 200, [...clientRegistry.byId.values()]);
      if (req.method !== 'PUT') return methodNotAllowed('GET, PUT');
      let list;
      try {
        list = JSON.parse(await readBody(req, 1024 * 1024));
      } catch (err) {
        return sendJson(res, 400, { error: `body is not valid JSON: ${err.message}` });
      }
      let byId;
      try {
        byId = await validateClients(list);
      } catch (err) {
        process.stderr.write(`oidc-test-provider: PUT /__test/clients rejected: ${err.message}\n`);
        return sendJson(res, 400, { error: err.message });
      }
      replaceClients(byId);
      process.stderr.write(`oidc-test-provider: clients replaced (generation ${clientRegistry.generation}): ${[...byId.keys()].join(', ') || '(none)'}\n`);
      return sendEmpty(res, 204);
    }
    default:
      return sendJson(res, 404, { error: 'not found' });
  }
}

handler = async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (testEndpoints && (url.pathname === '/__test' || url.pathname.startsWith('/__test/'))) {
      await testRoute(req, res, url);
      return;
    }
    if (url.pathname.startsWith('/interaction/')) {
      if (await interactionRoute(req, res, url)) return;
    }
    providerCallback(req, res);
  } catch (err) {
    process.stderr.write(`oidc-test-provider: handler error: ${err.stack || err}\n`);
    if (!res.headersSent) send(res, 500, page('Error', `<pre id="error">${esc(err.message)}</pre>`));
    else res.end();
  }
};

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
