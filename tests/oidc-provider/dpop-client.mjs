// A DPoP client for the tests, made of the npm registry's `dpop` package (panva), not of
// Portcullis's code: one key pair per process (its algorithm the first argument), then one
// proof per line of JSON read on stdin ({"htm", "htu", "nonce"?, "ath_of"?: the access token,
// "key"?: "other" for a second key pair}), printed as a line of JSON {"proof", "jkt"}.
import { createInterface } from 'node:readline';
import { generateKeyPair, generateProof, calculateThumbprint } from 'dpop';

const alg = process.argv[2] || 'ES256';
const keys = { main: await generateKeyPair(alg), other: await generateKeyPair(alg) };
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const ask = JSON.parse(line);
  const pair = keys[ask.key || 'main'];
  const proof = await generateProof(pair, ask.htu, ask.htm, ask.nonce, ask.ath_of);
  const jkt = await calculateThumbprint(pair.publicKey);
  process.stdout.write(JSON.stringify({ proof, jkt }) + '\n');
}
