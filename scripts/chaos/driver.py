#!/usr/bin/env python3
"""The load, the probes and the measures of scripts/chaos.sh (docs/CHAOS.md).

`setup` makes the users through the admin API. `run` drives the load for --duration seconds
across both instances (logins, refreshes, proxied requests, logouts, admin revocations, session
ends, refresh reuse, API keys made and deleted), probes each instance every 250 ms, checks every
answered revocation on both instances, then prints the figures as Markdown and exits 1 if a
target is missed. Standard library only. It never prints a token, password or key: counts only.
"""
import argparse
import base64
import http.client
import json
import os
import random
import secrets
import sys
import threading
import time
from collections import Counter

TIMEOUT = 15            # seconds; a slower answer counts as no answer
PROBE_EVERY = 0.25
PROPAGATION = 1.0       # SPEC section 3 step 8: on every instance within 1 s (of Redis's return)
SLACK = 0.5             # for the request in flight and the checker's own timing
RECOVERY_TARGET = 10.0
ADMIN = os.environ.get("CHAOS_ADMIN_TOKEN", "")
FAKE = os.environ.get("CHAOS_FAKE_REVOCATIONS") == "1"
# What each worker does after its login and refresh, and how often.
ACTIONS = {"logout": 20, "admin-sid": 15, "admin-jti": 10, "session-delete": 15,
           "refresh-reuse": 15, "api-key": 20, "admin-subject": 5}


class Gateway:
    def __init__(self, spec, name):
        host, port, admin, pid = spec.rsplit(":", 3)
        self.name, self.host, self.port, self.admin, self.pid = name, host, int(port), int(admin), int(pid)


class Stats:
    """Every answer, by instance and status; 5xx and non-answers kept with their time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.status = Counter()     # (instance, status)
        self.codes = Counter()      # (status, error) of refusals
        self.bad = []               # (t, instance index, kind, status, error): 5xx or no answer
        self.notes = Counter()      # informational counts

    def note(self, what, n=1):
        with self.lock:
            self.notes[what] += n


class Run:
    def __init__(self, args):
        self.gws = [Gateway(s, "AB"[i]) for i, s in enumerate(args.gateway)]
        self.args, self.stats, self.stop = args, Stats(), threading.Event()
        self.revoked, self.rev_lock = [], threading.Lock()
        self.probes, self.rss = [], {g.name: 0 for g in self.gws}
        self.users = []
        if args.command == "run":  # made by `setup`
            with open(os.path.join(args.work, "users.json")) as f:
                self.users = json.load(f)

    def req(self, gi, kind, method, path, body=None, token=None, key=None, admin=False):
        """One request on a fresh connection (a retry could spend a refresh token twice)."""
        gw = self.gws[gi]
        headers = {"Connection": "close"}
        if token:
            headers["Authorization"] = "Bearer " + token
        if key:
            headers["X-API-Key"] = key
        if admin:
            headers["Authorization"] = "Bearer " + ADMIN
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        conn = http.client.HTTPConnection(gw.host, gw.admin if admin else gw.port, timeout=TIMEOUT)
        status, doc = 0, {}
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
            try:
                doc = json.loads(raw) if raw else {}
            except ValueError:
                doc = {}
            doc = doc if isinstance(doc, dict) else {}
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        s = self.stats
        with s.lock:
            s.status[(gw.name, status)] += 1
            if status >= 400:
                s.codes[(status, doc.get("error", "-"))] += 1
            if status >= 500 or status == 0:
                s.bad.append((time.time(), gi, kind, status, doc.get("error", "-")))
        return status, doc

    def login(self, gi, user, kind="auth"):
        return self.req(gi, kind, "POST", "/auth/login",
                        {"username": user["username"], "password": user["password"]})

    def proxied(self, gi, token=None, key=None, kind="proxy"):
        return self.req(gi, kind, "GET", "/api/chaos/orders", token=token, key=key)[0]

    def outages(self):
        """Outages from the events file: {svc, kill, launch, ready}, in order. svc: redis, pg,
        or gw-a / gw-b (one gateway killed and started again)."""
        out, current = [], {}
        for t, name, detail in read_events(self.args.events):
            svc, _, what = name.rpartition("-")
            if svc not in ("redis", "pg", "gw-a", "gw-b") or what not in ("kill", "launch", "ready"):
                continue
            if what == "ready" and svc.startswith("gw-"):
                self.gws["ab".index(svc[-1])].pid = int(detail)  # the new process
            if what == "kill":
                current[svc] = {"svc": svc, "kill": t, "down": detail, "launch": None, "ready": None}
                out.append(current[svc])
            elif svc in current:
                current[svc][what] = t
        return out

    def record(self, kind, gi, creds):
        """A revocation the gateway answered as done; checked at once on the deciding instance."""
        r = {"kind": kind, "gi": gi, "t": time.time(), "creds": creds, "held": set(), "lost": []}
        with self.rev_lock:
            self.revoked.append(r)
        self.verify(r, [gi], "at once, deciding instance")

    def deadline(self, r, gi):
        """When the revocation must hold on instance gi: at once on the deciding one, else within
        PROPAGATION, or PROPAGATION after Redis's return when Redis was away meanwhile."""
        if gi == r["gi"]:
            return r["t"]
        d = r["t"] + PROPAGATION
        for _ in range(2):
            for o in self.outages():
                end = o["ready"] or float("inf")
                here = o["svc"] in ("redis", "gw-" + self.gws[gi].name.lower())
                if here and o["kill"] <= d + SLACK and end >= r["t"] - PROPAGATION:
                    d = max(d, end + PROPAGATION)
        return d + SLACK

    def check(self, gi, ctype, secret):
        self.stats.note("presentations of revoked credentials")
        if ctype == "refresh":
            st = self.req(gi, "auth", "POST", "/auth/refresh", {"refresh_token": secret})[0]
        else:
            st = self.proxied(gi, **{"token" if ctype == "access" else "key": secret})
        return "accepted" if 200 <= st < 300 else "held" if st in (400, 401) else "unknown"

    def verify(self, r, gis, phase, force=False):
        now = time.time()
        for ci, (ctype, secret) in enumerate(r["creds"]):
            for gi in gis:
                if ((ci, gi) in r["held"] and not force) or now < self.deadline(r, gi):
                    continue
                result = self.check(gi, ctype, secret)
                if result == "held":
                    r["held"].add((ci, gi))
                elif result == "accepted":
                    r["lost"].append(f"{r['kind']}: {ctype} accepted by {self.gws[gi].name} "
                                     f"{time.time() - r['t']:.1f} s after ({phase})")


def read_events(path):
    out = []
    with open(path) as f:
        for line in f:
            t, name, detail = (line.split(None, 2) + ["-"])[:3]
            out.append((float(t), name, detail.strip()))
    return out


def claims(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def worker(run, user):
    rng, n = random.Random(), len(run.gws)
    while not run.stop.is_set():
        try:
            cycle(run, user, rng, n)
        except Exception as e:  # a driver bug must not pass for a quiet gateway
            run.stats.note(f"driver error: {type(e).__name__}")
        time.sleep(rng.uniform(0.2, 0.6))


def cycle(run, user, rng, n):
    st, doc = run.login(rng.randrange(n), user)
    if st != 200:
        return
    login_at, access, refresh = time.time(), doc["access_token"], doc["refresh_token"]
    for _ in range(5):
        if run.proxied(rng.randrange(n), access) == 401:
            run.stats.note("valid token refused (401)")
    spent = None
    st, doc = run.req(rng.randrange(n), "auth", "POST", "/auth/refresh", {"refresh_token": refresh})
    if st == 200:
        spent, access, refresh = refresh, doc["access_token"], doc["refresh_token"]
    elif st == 401:
        lost = any(o["kill"] >= login_at - 1 for o in run.outages() if o["svc"] == "redis")
        run.stats.note("refresh refused: session lost with an empty Redis" if lost
                       else "refresh refused, unexplained")
    for _ in range(5):
        if run.proxied(rng.randrange(n), access) == 401:
            run.stats.note("valid token refused (401)")
    action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
    gi, c = rng.randrange(n), claims(access)
    both = [("access", access), ("refresh", refresh)]
    if action == "logout":
        # CHAOS_FAKE_REVOCATIONS=1: a negative control. Logouts are recorded without being sent,
        # so the run must report them lost and fail.
        if FAKE or run.req(gi, "auth", "POST", "/auth/logout", token=access)[0] == 204:
            run.record(action, gi, both)
    elif action in ("admin-sid", "admin-jti", "admin-subject"):
        field = {"admin-sid": "sid", "admin-jti": "jti", "admin-subject": "sub"}[action]
        name = "subject" if field == "sub" else field
        if run.req(gi, "admin-revoke", "POST", "/admin/revoke", {name: c[field]}, admin=True)[0] == 204:
            run.record(action, gi, both if field != "jti" else both[:1])
            if field == "sub":
                time.sleep(1.1)  # a login in the same second is revoked too (SPEC section 4)
    elif action == "session-delete":
        if run.req(gi, "auth", "DELETE", f"/auth/sessions/{c['sid']}", token=access)[0] == 204:
            run.record(action, gi, both)
    elif action == "refresh-reuse" and spent:
        st, doc = run.req(gi, "auth", "POST", "/auth/refresh", {"refresh_token": spent})
        if st == 401 and "reused" in doc.get("error_description", ""):
            run.record(action, gi, both)
    elif action == "api-key":
        api_key(run, gi, access, rng, n)


def api_key(run, gi, access, rng, n):
    st, doc = run.req(gi, "auth", "POST", "/auth/api-keys", {"name": "chaos"}, token=access)
    if st != 201:
        return
    key, key_id = doc["key"], doc["id"]
    for other in range(n):  # works on every instance within 1 s (SPEC section 7)
        until = time.time() + PROPAGATION + 2
        while run.proxied(other, key=key) != 200 and time.time() < until:
            time.sleep(0.1)
        if time.time() >= until:
            run.stats.note("new API key not accepted within 3 s")
    until = time.time() + 30  # the database may be away: try again until it is back
    while time.time() < until:
        d = rng.randrange(n)
        st = run.req(d, "auth", "DELETE", f"/auth/api-keys/{key_id}", token=access)[0]
        if st == 204:
            run.record("api-key-delete", d, [("key", key)])
            return
        if st not in (0, 503):
            break
        time.sleep(0.5)
    run.stats.note(f"API key left undeleted ({st})")


def prober(run, user):
    """Per instance every PROBE_EVERY: a proxied request (needs fresh revocations: Redis), a
    login (Redis and PostgreSQL), an admin read of a user (PostgreSQL)."""
    tokens = {}
    while not run.stop.is_set():
        t = time.time()
        for gi in range(len(run.gws)):
            if gi not in tokens:
                st, doc = run.login(gi, user, "probe-auth")
                if st == 200:
                    tokens[gi] = doc["access_token"]
            st = run.proxied(gi, tokens.get(gi), kind="probe-proxy") if gi in tokens else 0
            if st == 401:
                run.stats.note("probe token refused (401)")
                tokens.pop(gi)
            login_ok = run.login(gi, user, "probe-auth")[0] == 200
            admin_ok = run.req(gi, "probe-admin", "GET", f"/admin/users/{user['username']}",
                               admin=True)[0] == 200
            run.probes.append((t, gi, st == 200, login_ok, admin_ok))
        run.stop.wait(max(0.0, PROBE_EVERY - (time.time() - t)))


def checker(run):
    """Checks revocations on both instances once their deadline passed; re-checks them all
    once Redis is back (an empty Redis is refilled from the instances' views) and once a
    killed gateway is back (its view then comes from Redis alone)."""
    rechecked = set()
    while not run.stop.wait(2.0):
        for o in run.outages():
            if o["svc"] != "pg" and o["ready"] and time.time() > o["ready"] + 3 and o["kill"] not in rechecked:
                rechecked.add(o["kill"])
                with run.rev_lock:
                    for r in run.revoked:
                        r["held"].clear()
        with run.rev_lock:
            pending = [r for r in run.revoked if len(r["held"]) < len(r["creds"]) * len(run.gws)]
        for r in pending:
            if run.stop.is_set():
                break
            run.verify(r, range(len(run.gws)), "during the run")


def vm(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sampler(run):
    while not run.stop.wait(0.5):
        run.outages()  # follows a restarted gateway's new pid
        for g in run.gws:
            run.rss[g.name] = max(run.rss[g.name], vm(g.pid, "VmRSS"))


def setup(args):
    """The users, made on instance A through the admin API; passwords in a file of mode 600."""
    run, users = Run(args), []
    for name in [f"chaos-w{i}" for i in range(args.workers)] + ["chaos-probe"]:
        pw = secrets.token_urlsafe(18)
        st, doc = run.req(0, "admin-users", "POST", "/admin/users",
                          {"username": name, "password": pw, "roles": ["user"]}, admin=True)
        if st != 201:
            sys.exit(f"creating user {name}: {st} {doc.get('error', '')}")
        users.append({"username": name, "password": pw})
    path = os.path.join(args.work, "users.json")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(users, f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["setup", "run"])
    p.add_argument("--gateway", action="append", required=True, help="host:port:admin_port:pid")
    p.add_argument("--events", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--duration", type=int, default=180)
    p.add_argument("--workers", type=int, default=6)
    args = p.parse_args()
    if args.command == "setup":
        return setup(args)
    run = Run(args)
    start = time.time()
    threads = [threading.Thread(target=worker, args=(run, u), daemon=True) for u in run.users[:-1]]
    threads += [threading.Thread(target=f, args=a, daemon=True) for f, a in
                ((prober, (run, run.users[-1])), (checker, (run,)), (sampler, (run,)))]
    for t in threads:
        t.start()
    while time.time() - start < args.duration:
        time.sleep(min(30, args.duration - (time.time() - start)))
        with run.stats.lock:
            total, bad = sum(run.stats.status.values()), len(run.stats.bad)
        print(f"[driver] {time.time() - start:5.0f} s: {total} requests, {bad} 5xx or unanswered, "
              f"{len(run.revoked)} revocations", file=sys.stderr, flush=True)
    run.stop.set()
    for t in threads:
        t.join(TIMEOUT + 5)
    time.sleep(PROPAGATION + SLACK)
    final_check(run)
    sys.exit(report(run, start))


def final_check(run):
    """Every revocation, every credential, on both instances, once more (4 threads)."""
    revs = list(run.revoked)
    parts = [revs[i::4] for i in range(4)]
    def go(part):
        for r in part:
            run.verify(r, range(len(run.gws)), "final check", force=True)
    ts = [threading.Thread(target=go, args=(p,)) for p in parts]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def report(run, start):
    """The figures, as Markdown on stdout; the exit status: 1 if a target is missed."""
    from report import render  # the table-making half, beside this file
    return render(run, start, read_events(run.args.events), vm)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
