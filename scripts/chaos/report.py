"""The figures of a chaos run (scripts/chaos/driver.py): recovery per outage, 5xx sorted into
the ones `on_failure` and an absent database explain and the rest, revocations lost, peak RSS.
Printed as Markdown (docs/CHAOS.md holds one); `render` returns the exit status."""
import os
import time
from collections import Counter

RECOVERY_TARGET = 10.0
WINDOW_SLACK = 1.0  # a request sent just before the probe that saw recovery may still fail
NEEDS = {"redis": ("proxy", "login"), "pg": ("admin", "login"),
         "gw-a": ("proxy", "login", "admin"), "gw-b": ("proxy", "login", "admin")}
# Which requests a service's absence may fail with 503 `unavailable`: Redis, under on_failure =
# "closed", the proxied ones whose credential verified and everything under /auth; PostgreSQL,
# logins, self-service and the admin users API (never a proxied request). A killed gateway
# fails everything sent to it, with no answer at all.
CAUSES = {"redis": ("proxy", "auth"), "pg": ("auth", "admin-users")}
NAMES = {"redis": "Redis", "pg": "PostgreSQL", "gw-a": "gateway A", "gw-b": "gateway B"}


def groups(outages):
    """Outages whose kills are within a second of each other are one event."""
    out = []
    for o in outages:
        if out and o["kill"] - out[-1][0]["kill"] < 1.0:
            out[-1].append(o)
        else:
            out.append([o])
    return out


def recovery(group, probes, gi):
    """Seconds from the last restart of the group until every probe its services need succeeds
    on instance gi; None if never."""
    launch = max((o["launch"] or float("inf")) for o in group)
    needs = {n for o in group for n in NEEDS[o["svc"]]}
    failed = 0
    for t, g, proxy_ok, login_ok, admin_ok in probes:
        ok = {"proxy": proxy_ok, "login": login_ok, "admin": admin_ok}
        if g != gi or t < group[0]["kill"]:
            continue
        if all(ok[n] for n in needs):
            if t >= launch:
                return t - launch, failed
        else:
            failed += 1
    return None, failed


def classify(bad, windows):
    """`redis`, `pg` or `unexpected` for each 5xx or unanswered request."""
    sorted_ = Counter()
    unexpected = []
    for t, gi, kind, status, error in bad:
        kind = {"probe-proxy": "proxy", "probe-auth": "auth", "probe-admin": "admin-users"}.get(kind, kind)
        cause = "unexpected"
        for svc, kill, until in windows:
            if not kill <= t <= until[gi] + WINDOW_SLACK:
                continue
            if svc == "gw-" + "ab"[gi] and (status == 0 or (status, error) == (503, "unavailable")):
                cause = "gw"
            elif (status, error) == (503, "unavailable") and kind in CAUSES.get(svc, ()):
                cause = svc
            if cause != "unexpected":
                break
        sorted_[cause] += 1
        if cause == "unexpected":
            unexpected.append((t, gi, kind, status, error))
    return sorted_, unexpected


def render(run, start, events, vm):
    probes, names = sorted(run.probes), [g.name for g in run.gws]
    end = time.time()
    failed = []
    lines = [f"Chaos run of {time.strftime('%Y-%m-%d %H:%M', time.localtime(start))}: "
             f"{run.args.duration} s of load on {len(names)} instances, {run.args.workers} workers; "
             f"Redis {'with an fsync-always AOF' if os.environ.get('CHAOS_REDIS_AOF') else 'without persistence (it restarts empty)'}.",
             "", "| event | at (s) | down (s) | service start (s) | recovered on "
             + " / ".join(names) + " (s) | failed probe rounds | target | |", "|---|---|---|---|---|---|---|---|"]
    windows = []
    for group in groups(run.outages()):
        svcs = "+".join(NAMES[o["svc"]] for o in group)
        launch = max((o["launch"] or end) for o in group)
        ready = max((o["ready"] or end) for o in group)
        # A killed gateway's recovery is its own; the other one's is not measured.
        only = [gi for gi in range(len(names)) if all(o["svc"] == "gw-" + "ab"[gi] for o in group)]
        recs = [recovery(group, probes, gi) if not only or gi in only else (0.0, 0)
                for gi in range(len(names))]
        until = [launch + r if r is not None else end for r, _ in recs]
        windows += [(o["svc"], o["kill"], until) for o in group]
        ok = all(r is not None and r < RECOVERY_TARGET for r, _ in recs)
        if not ok:
            failed.append(f"recovery after {svcs} SIGKILL")
        lines.append(f"| {svcs} SIGKILL | {group[0]['kill'] - start:.0f} | {launch - group[0]['kill']:.1f} "
                     f"| {ready - launch:.2f} | " + " / ".join("never" if r is None else "-" if only and gi not in only
                                                               else f"{r:.2f}" for gi, (r, _) in enumerate(recs))
                     + f" | {sum(n or 0 for _, n in recs)} | < {RECOVERY_TARGET:.0f} s | {'ok' if ok else 'MISSED'} |")
    for t, name, detail in events:
        if name in ("reload-refused", "storm-result"):
            ok = "=no" not in detail
            if not ok:
                failed.append(name)
            what = {"reload-refused": "broken config + SIGHUP: refused, running config kept",
                    "storm-result": "SIGHUP storm (50 to each within 1 s): alive, reloads done"}[name]
            lines.append(f"| {what} ({detail}) | {t - start:.0f} | | | | | | {'ok' if ok else 'MISSED'} |")
        elif name == "key-rotate":
            lines.append(f"| signing-key rotation: {detail} | {t - start:.0f} | | | | | | |")

    s = run.stats
    sorted_, unexpected = classify(s.bad, windows)
    revs = run.revoked
    lost = [r for r in revs if r["lost"]]
    kinds = Counter(r["kind"] for r in revs)
    total = sum(s.status.values())
    statuses = Counter()
    for (_, st), n in s.status.items():
        statuses[st] += n
    peak = {g.name: max(run.rss[g.name], vm(g.pid, "VmHWM")) / 1024 for g in run.gws}
    alive = {g.name: os.path.exists(f"/proc/{g.pid}") for g in run.gws}
    checks = [
        ("5xx or no answer beyond what on_failure / an absent database explain", sorted_["unexpected"], "0"),
        ("revocations lost (a revoked credential accepted again, either instance)", len(lost), "0"),
        ("gateways alive at the end", "/".join("yes" if alive[n] else "no" for n in names), "yes"),
    ]
    if sorted_["unexpected"]:
        failed.append("unexpected 5xx")
    if lost:
        failed.append("revocations lost")
    if not all(alive.values()):
        failed.append("a gateway died")
    lines += ["", "| measure | value | target |", "|---|---|---|"]
    lines += [f"| {m} | {v} | {t} |" for m, v, t in checks]
    lines += [
        f"| 503 while Redis was away (`on_failure = \"closed\"`) | {sorted_['redis']} | expected |",
        f"| 503 while PostgreSQL was away (logins, self-service, admin users API) | {sorted_['pg']} | expected |",
        f"| no answer (or 503) from a gateway while it was killed and starting again | {sorted_['gw']} | expected |",
        f"| revocations answered and checked on both instances | {len(revs)} ("
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        + f"; {s.notes['presentations of revoked credentials']} presentations of a revoked credential) | |",
        f"| requests | {total} ({total / max(1, end - start):.0f}/s; "
        + ", ".join(f"{st or 'no answer'}: {n}" for st, n in sorted(statuses.items())) + ") | |",
        f"| peak RSS (VmHWM) | " + " / ".join(f"{n} {peak[n]:.1f} MiB" for n in names) + " | |",
    ]
    refusals = ", ".join(f"{st} {e}: {n}" for (st, e), n in sorted(s.codes.items()))
    lines += ["", f"Refusals by status and error: {refusals or 'none'}."]
    notes = {k: n for k, n in s.notes.items() if k != "presentations of revoked credentials"}
    if notes:
        lines.append("Notes: " + "; ".join(f"{k}: {n}" for k, n in sorted(notes.items())) + ".")
    for r in lost[:20]:
        lines += [f"- LOST {x}" for x in r["lost"]]
    for t, gi, kind, status, error in unexpected[:20]:
        lines.append(f"- UNEXPECTED {status or 'no answer'} {error} on {names[gi]}, {kind}, at {t - start:.1f} s")
    lines += ["", "Result: " + ("every target met" if not failed else "MISSED: " + ", ".join(failed))]
    with open(os.path.join(run.args.work, "probes.csv"), "w") as f:  # for a closer look
        f.write("seconds,instance,proxied_ok,login_ok,admin_ok\n")
        f.writelines(f"{t - start:.2f},{names[gi]},{int(a)},{int(b)},{int(c)}\n" for t, gi, a, b, c in probes)
    print("\n".join(lines), flush=True)
    return 1 if failed else 0
