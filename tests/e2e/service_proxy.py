#!/usr/bin/env python3
"""A tiny stand-in for kube-proxy, for tests/e2e/chart.sh.

The control plane of ../shared/k8s has no kube-proxy and no pod network: a Service's
ClusterIP (in 127.64.0.0/12, on loopback) reaches nothing by itself. This forwarder
listens on one ClusterIP:port and passes each TCP connection, bytes untouched (the TLS
session is between the API server and the replica), to one of the Service's endpoints:

  - round-robin over the endpoints given on the command line (each replica's "pod IP"
    and containerPort);
  - like kube-proxy with the endpoints controller, only to endpoints whose readiness probe
    answers 200 (when a probe URL is given), checked every second, as a kubelet would;
  - an endpoint that refuses the connection is skipped and the next one tried; when none
    accepts, the client's connection is closed (the API server then reports "failed
    calling webhook", as with a Service that has no endpoints).

  service_proxy.py LISTEN_IP:PORT ENDPOINT[,READYZ_URL]...

e.g. service_proxy.py 127.64.12.7:443 127.1.0.1:9443,http://127.1.0.1:8081/readyz ...

Every address must be on loopback (127.0.0.0/8): this test never sends traffic elsewhere.
It prints one line per connection to standard output ("conn N -> ENDPOINT") and exits
on SIGTERM or SIGINT.
"""

import asyncio
import ipaddress
import signal
import sys
import urllib.request


def split_host_port(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"service_proxy: {host} is not a loopback address")
    return host, int(port)


class Endpoint:
    def __init__(self, spec):
        addr, _, readyz = spec.partition(",")
        self.name = addr
        self.host, self.port = split_host_port(addr)
        self.readyz = readyz or None
        if self.readyz:
            split_host_port(urllib.request.urlparse(self.readyz).netloc)
        # Without a probe an endpoint counts as ready; with one, only once it answers.
        self.ready = self.readyz is None


def probe(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except Exception:  # refused, timed out, 503: not ready
        return False


async def watch_readiness(endpoints):
    loop = asyncio.get_running_loop()
    while True:
        for e in endpoints:
            if e.readyz:
                e.ready = await loop.run_in_executor(None, probe, e.readyz)
        await asyncio.sleep(1)


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


class Proxy:
    def __init__(self, endpoints):
        self.endpoints = endpoints
        self.next = 0
        self.count = 0

    async def handle(self, client_reader, client_writer):
        try:
            await self.forward(client_reader, client_writer)
        except asyncio.CancelledError:
            # Stopping: the connection goes with the proxy (a task that ends cancelled
            # would make asyncio print a traceback for it).
            client_writer.close()

    async def forward(self, client_reader, client_writer):
        self.count += 1
        n = self.count
        ready = [e for e in self.endpoints if e.ready]
        order = ready[self.next % len(ready):] + ready[:self.next % len(ready)] if ready else []
        self.next += 1
        for e in order:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(e.host, e.port), timeout=3)
            except (OSError, asyncio.TimeoutError):
                print(f"conn {n}: {e.name} refused, trying the next", flush=True)
                continue
            print(f"conn {n} -> {e.name}", flush=True)
            await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))
            return
        print(f"conn {n}: no ready endpoint accepts; closed", flush=True)
        client_writer.close()


async def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    host, port = split_host_port(argv[1])
    endpoints = [Endpoint(s) for s in argv[2:]]
    proxy = Proxy(endpoints)
    server = await asyncio.start_server(proxy.handle, host, port, reuse_address=True)
    print(f"listening on {host}:{port} for {', '.join(e.name for e in endpoints)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    readiness = asyncio.create_task(watch_readiness(endpoints))
    await stop.wait()
    readiness.cancel()
    server.close()
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
