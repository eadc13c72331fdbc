#!/usr/bin/env python3
"""Write a deterministic nginx access log (combined format plus the request time) for the
stats benchmarks: N lines over one day from 2026-12-01T00:00:00Z, in time order.

    make-access-log.py OUT_FILE [N_LINES=10000000]

Its shape: 50,000 clients and about 2,000 paths, both skewed (a few are most of the
traffic); status 200 for 70 % of requests, 304 10 %, 404 10 %, 5xx 5 % (so `status:404`
selects about a tenth of the lines and `status:>=500` a twentieth); bytes `-` on one line
in eight; request times from 1 ms with a long tail. About 120 bytes a line."""
import random, sys

out_path = sys.argv[1]
n_lines = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
random.seed(7)

clients = [f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}" for _ in range(50_000)]
resources = ["orders", "users", "carts", "products", "invoices", "sessions", "search", "reports"]
paths = ["/", "/login", "/logout", "/health", "/static/app.js", "/static/app.css", "/favicon.ico"]
paths += [f"/api/v1/{r}" for r in resources]
paths += [f"/api/v1/{r}/{i}" for r in resources for i in range(249)]
agents = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "python-requests/2.32.3",
          "Go-http-client/1.1", "kube-probe/1.31"]
statuses = [200] * 70 + [304] * 10 + [404] * 10 + [301] * 5 + [500] * 2 + [502] * 2 + [503]
methods = ["GET"] * 6 + ["POST"] * 3 + ["DELETE"]

# Zipf-like picks: index = floor(n * u^3) favours the first entries.
def skewed(items):
    n = len(items)
    return lambda: items[int(n * random.random() ** 3)]

client, path, agent = skewed(clients), skewed(paths), skewed(agents)
day_seconds = 86_400
with open(out_path, "w", buffering=1 << 20) as out:
    for k in range(n_lines):
        second = k * day_seconds // n_lines
        hh, mm, ss = second // 3600, second // 60 % 60, second % 60
        status = random.choice(statuses)
        size = "-" if random.random() < 0.125 else str(random.randrange(200, 60_000))
        took = 0.001 + random.expovariate(1 / 0.08) * (10 if status >= 500 else 1)
        out.write(
            f'{client()} - - [01/Dec/2026:{hh:02}:{mm:02}:{ss:02} +0000] "{random.choice(methods)} {path()} HTTP/1.1" '
            f'{status} {size} "-" "{agent()}" {took:.3f}\n'
        )
