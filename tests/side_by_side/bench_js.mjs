// Auth0's JS server SDK (@auth0/auth0-server-js) on the side-by-side workload.
//
// Serves the access token of the default audience from the session in tests/data/session.json
// (converted to the JS SDK's camelCase session shape), sent back by the browser as encrypted
// cookies written by the SDK's own StatelessStateStore (`__a0_session.<i>` chunks of 3072
// characters): each call parses the Cookie header and awaits ServerClient.getAccessToken (a
// cache hit, no network). The CookieHandler below is the minimal one an app supplies.
//
// Usage: node bench_js.mjs SESSION_JSON ITERATIONS WARMUP SAMPLE_SIZE
// Times ITERATIONS calls in samples of SAMPLE_SIZE calls and prints
// `RESULT js <median µs per call over samples> <mean µs per call> <calls>`.

import { readFileSync } from "node:fs";
import {
  CookieTransactionStore,
  ServerClient,
  StatelessStateStore,
} from "@auth0/auth0-server-js";

const SECRET = "benchmark-secret-benchmark-secret-0123456789";

// storeOptions: { cookies: {name: value} } in, { jar: {name: value} } out.
const cookieHandler = {
  setCookie: (name, value, _opts, storeOptions) => {
    storeOptions.jar[name] = value;
  },
  getCookie: (name, storeOptions) => storeOptions.cookies[name],
  getCookies: (storeOptions) => storeOptions.cookies,
  deleteCookie: (name, storeOptions) => {
    if (storeOptions.jar) delete storeOptions.jar[name];
  },
};

// name=value pairs of a Cookie header (what a web framework hands the store).
function parseCookieHeader(header) {
  const cookies = {};
  for (const pair of header.split(";")) {
    const i = pair.indexOf("=");
    if (i > 0) cookies[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return cookies;
}

// The python-shaped session of the fixture in the JS SDK's shape.
function jsSession(s) {
  return {
    user: s.user,
    idToken: s.id_token,
    refreshToken: s.refresh_token,
    tokenSets: s.token_sets.map((t) => ({
      audience: t.audience,
      accessToken: t.access_token,
      scope: t.scope,
      expiresAt: t.expires_at,
    })),
    internal: { sid: s.internal.sid, createdAt: s.internal.created_at },
    domain: s.domain,
  };
}

const [path, iterations, warmup, sampleSize] = [
  process.argv[2],
  ...process.argv.slice(3, 6).map(Number),
];
const fixture = JSON.parse(readFileSync(path, "utf8"));
const audience = fixture.authorization_params.audience;
const stateStore = new StatelessStateStore({ secret: SECRET }, cookieHandler);
const client = new ServerClient({
  domain: "bench.local",
  clientId: "bench-client",
  clientSecret: "bench-client-secret",
  // JS takes one scope string (no per-audience map): the default audience's.
  authorizationParams: {
    audience,
    scope: fixture.authorization_params.scope[audience],
  },
  transactionStore: new CookieTransactionStore({ secret: SECRET }, cookieHandler),
  stateStore,
});

const session = jsSession(fixture.session);
const jar = {};
await stateStore.set("__a0_session", session, false, { cookies: {}, jar });
const header = Object.entries(jar)
  .map(([k, v]) => `${k}=${v}`)
  .join("; ");
console.log(
  `INFO js session_json_bytes=${JSON.stringify(session).length} ` +
    `cookie_header_bytes=${header.length} chunks=${Object.keys(jar).length}`,
);
const expected = session.tokenSets[0].accessToken;

async function call() {
  const token = await client.getAccessToken({ cookies: parseCookieHeader(header) });
  if (token.accessToken !== expected) throw new Error("not the cached access token");
}

for (let i = 0; i < warmup; i++) await call();
const samples = Math.max(Math.floor(iterations / sampleSize), 1);
const times = [];
for (let r = 0; r < samples; r++) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < sampleSize; i++) await call();
  times.push(Number(process.hrtime.bigint() - started) / 1e3 / sampleSize);
}
const mean = times.reduce((a, b) => a + b, 0) / times.length;
times.sort((a, b) => a - b);
console.log(
  `RESULT js ${times[Math.floor(times.length / 2)].toFixed(2)} ${mean.toFixed(2)} ${samples * sampleSize}`,
);
