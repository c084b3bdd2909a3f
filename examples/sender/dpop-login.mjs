// The walk-through's DPoP client (node, and the npm registry's `dpop` package that
// `examples/sender/dpop.sh` installs): a key pair, a login with a proof, a call with the
// DPoP-bound token and a fresh proof, then the same token stolen: as Bearer, and with another
// key's proof.   node examples/sender/dpop-login.mjs [https://localhost:8443]
import { generateKeyPair, generateProof } from '../../tests/oidc-provider/node_modules/dpop/build/index.js';

const base = process.argv[2] || 'https://localhost:8443';
const key = await generateKeyPair('ES256');
// The echo upstream answers with what it received: who Portcullis said the caller is.
const show = async (label, r) => {
  const body = await r.json();
  const said = r.status === 200
    ? `x-user-id ${body.headers['x-user-id']}, x-auth-method ${body.headers['x-auth-method']}, dpop header upstream: ${'dpop' in body.headers}`
    : `${body.error}: ${body.error_description}`;
  console.log(label, r.status, said);
};

const login = await fetch(`${base}/auth/login`, {
  method: 'POST',
  headers: {
    'Content-Type': 'application/json',
    DPoP: await generateProof(key, `${base}/auth/login`, 'POST'),
  },
  body: JSON.stringify({ username: 'alice', password: 'alice-demo-password' }),
});
const pair = await login.json();
console.log('login', login.status, 'token_type', pair.token_type);
const token = pair.access_token;
const url = `${base}/api/orders`;
await show('call with a proof:', await fetch(url, {
  headers: { Authorization: `DPoP ${token}`, DPoP: await generateProof(key, url, 'GET', undefined, token) },
}));
await show('stolen, as Bearer:', await fetch(url, { headers: { Authorization: `Bearer ${token}` } }));
const thief = await generateKeyPair('ES256');
await show('stolen, another key:', await fetch(url, {
  headers: { Authorization: `DPoP ${token}`, DPoP: await generateProof(thief, url, 'GET', undefined, token) },
}));
