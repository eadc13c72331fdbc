#!/usr/bin/env python3
"""Sends N wrong logins at once to an aggregator on 127.0.0.1:PORT, from
N/5 loopback addresses (127.2.x.y: five attempts each, what the limiter
allows an address), and prints the answers by status and the aggregator's
memory (VmRSS, VmHWM) before and after.

    tests/login_flood.py PORT PID [N=1000]
"""
import http.client
import sys
import threading
import time
from collections import Counter

port, pid = int(sys.argv[1]), int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000


def memory():
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if line.startswith(("VmRSS", "VmHWM")))
    return {key: int(value.split()[0]) // 1024 for key, value in fields.items()}


results = []
lock = threading.Lock()


def attempt(i):
    address = f"127.2.{i // 5 // 250}.{(i // 5) % 250 + 1}"
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=(address, 0))
        body = f"username=user{i}&password=wrong-password-1234&next=%2F"
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{port}"}
        connection.request("POST", "/login", body, headers)
        answer = connection.getresponse()
        answer.read()
        status = answer.status
    except OSError as err:
        status = type(err).__name__
    with lock:
        results.append(status)


before = memory()
threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
time.sleep(1)  # the password thread gives memory back once its queue is empty
after = memory()
print(f"{n} logins at once: {dict(Counter(results))}")
print(f"aggregator RSS {before['VmRSS']} MB before, peak {after['VmHWM']} MB, {after['VmRSS']} MB after")
