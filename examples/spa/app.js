// The page's origin is not the gateway's: every call below is cross-origin, so the browser
// sends preflights and reads the answers only if Portcullis's [cors] allows this origin.
const GATEWAY = new URLSearchParams(location.search).get("gateway") || "http://127.0.0.1:8080";
document.getElementById("me").textContent = location.origin;
document.getElementById("gw").textContent = GATEWAY;

function row(step, ok, headers) {
  const tr = document.createElement("tr");
  const h = (name) => (headers && headers[name] ? headers[name].join(", ") : "");
  for (const [text, cls] of [
    [step, ""],
    [ok ? "ok" : "refused", ok ? "ok" : "bad"],
    [h("x-user-id"), ""],
    [h("x-auth-method"), ""],
    [h("x-user-roles"), ""],
  ]) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  document.getElementById("rows").appendChild(tr);
}

async function main() {
  // 1. Log in: JSON (a preflight first), and credentials included so that the session
  //    cookie Portcullis sets is kept for the gateway's origin.
  const login = await fetch(`${GATEWAY}/auth/login`, {
    method: "POST",
    credentials: "include",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: "alice", password: "alice-demo-password" }),
  });
  const pair = await login.json();
  row("POST /auth/login", login.ok && !!pair.access_token, null);

  // 2. The API with the Bearer token (Authorization: a preflight again).
  const byToken = await fetch(`${GATEWAY}/api/users/alice/orders`, {
    headers: { Authorization: `Bearer ${pair.access_token}` },
  });
  row("GET with the token", byToken.ok, byToken.ok ? (await byToken.json()).headers : null);

  // 3. The API with the session cookie alone: an unsafe method, allowed because this
  //    page's origin is in allowed_origins (the CSRF rule).
  const byCookie = await fetch(`${GATEWAY}/api/orders`, {
    method: "POST",
    credentials: "include",
    headers: { "Content-Type": "application/json" },
    body: "{}",
  });
  row("POST with the cookie", byCookie.ok, byCookie.ok ? (await byCookie.json()).headers : null);

  // 4. The refusal a page sees without a credential, readable thanks to the CORS headers.
  const none = await fetch(`${GATEWAY}/api/orders`);
  const refusal = await none.json();
  row(`GET without a credential: ${none.status} ${refusal.error}`, false, null);

  const done = login.ok && byToken.ok && byCookie.ok && none.status === 401;
  const status = document.getElementById("status");
  status.textContent = done ? "SPA-CHECK-PASSED" : "SPA-CHECK-FAILED";
  status.className = done ? "ok" : "bad";
}

main().catch((e) => {
  const status = document.getElementById("status");
  status.textContent = `SPA-CHECK-FAILED: ${e}`;
  status.className = "bad";
});
