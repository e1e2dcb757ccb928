#!/usr/bin/env python3
"""Many requests at once to a real API server, for tests/e2e/agent.sh.

kubectl costs a process per request; the ledger's tests need a thousand creates at the
same moment, and ten thousand create/delete cycles. This sends them from threads over
HTTPS as cluster-admin of a control plane that ../shared/k8s/up.sh started (its state
directory: the API server's port, its CA and the admin's client certificate).

  api_load.py race STATE_DIR N PATH TEMPLATE
      POSTs N objects to PATH at once (every thread waits on one barrier, then sends);
      TEMPLATE is a JSON object in which {i} is replaced by the request's number.
      Prints how many were created (201), then one line per distinct refusal message
      with its count.
  api_load.py cycles STATE_DIR N WORKERS PATH TEMPLATE
      N create-then-delete cycles of TEMPLATE on WORKERS threads ({i} as above, {a} and
      {b} by i // 250 and i % 250 + 1, for an address of its own per cycle). Prints
      "created C deleted D failed F", then up to 5 failure messages. A refused create is
      a failure; the cycle goes on to the next.

Every address must be on loopback (127.0.0.0/8): this test never sends traffic elsewhere.
"""

import collections
import http.client
import json
import ssl
import sys
import threading
import os


def connection_of(state):
    """host, port, ssl context and headers for cluster-admin of the control plane in
    STATE_DIR (up.sh's apiserver.port and pki/)."""
    port = int(open(os.path.join(state, "apiserver.port")).read().strip())
    pki = os.path.join(state, "pki")
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    return "127.0.0.1", port, ctx, headers


def request(conn_info, method, path, body=None):
    host, port, ctx, headers = conn_info
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data
    except Exception as e:  # a refused connection, a timeout: reported, never raised
        return 0, str(e).encode()
    finally:
        conn.close()


def message(data):
    try:
        return json.loads(data).get("message", "")[:300]
    except Exception:
        return data[:300].decode(errors="replace")


def race(conn_info, n, path, template):
    barrier = threading.Barrier(n)
    results = [None] * n

    def one(i):
        body = template.replace("{i}", str(i))
        barrier.wait()
        results[i] = request(conn_info, "POST", path, body)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = sum(1 for s, _ in results if s == 201)
    print(created)
    refusals = collections.Counter(message(d) for s, d in results if s != 201)
    for m, c in refusals.most_common(5):
        print(f"{c}x {m}")


def cycles(conn_info, n, workers, path, template):
    lock = threading.Lock()
    counts = {"created": 0, "deleted": 0, "failed": 0}
    failures = []
    next_i = [0]

    def work():
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= n:
                return
            body = (template.replace("{i}", str(i)).replace("{a}", str(i // 250))
                    .replace("{b}", str(i % 250 + 1)))
            name = json.loads(body)["metadata"]["name"]
            status, data = request(conn_info, "POST", path, body)
            if status != 201:
                with lock:
                    counts["failed"] += 1
                    failures.append(f"create {name}: {status} {message(data)}")
                continue
            status, data = request(conn_info, "DELETE", path + "/" + name)
            with lock:
                counts["created"] += 1
                if status in (200, 202):
                    counts["deleted"] += 1
                else:
                    counts["failed"] += 1
                    failures.append(f"delete {name}: {status} {message(data)}")

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"created {counts['created']} deleted {counts['deleted']} failed {counts['failed']}")
    for f in failures[:5]:
        print(f)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("race", "cycles"):
        sys.exit(__doc__)
    mode = sys.argv[1]
    conn_info = connection_of(sys.argv[2])
    if mode == "race":
        race(conn_info, int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        cycles(conn_info, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])


if __name__ == "__main__":
    main()
