#!/usr/bin/env python3
"""Bounded load: many slow clients and a few normal ones against one ingotd, on loopback.

Usage: slow_clients.py URL IMAGE_ID BIG_IMAGE_ID [--slow N] [--normal N] [--seconds S]

Slow clients (kept at N the whole run; one that the server drops reconnects at once), in turns:
  stall     a PATCH head with Content-Length: 400 and two body bytes, then nothing
  drip      a PATCH head, then one body byte every 2 s
  upload    creates an image, then PUTs data that declares 1 GiB and sends a byte every 2 s
  loris     a request head sent one byte a second
  reader    a download of the big image, read 1 KiB a second with a small receive buffer
  idle      a connection that never sends a byte
Normal clients loop over GET /v2/images?limit=5, GET /v2/images/ID, GET /healthcheck and a download
of the small image on one keep-alive connection each, ~20 requests a second each.

Prints one line of figures and exits 0 when every normal request answered 200 with its whole body
and the normal clients' p99 latency stayed under 100 ms; 1 otherwise.
"""
import argparse
import asyncio
import json
import socket
import sys
import time
import urllib.parse

KINDS = ["stall", "drip", "upload", "loris", "reader", "idle"]


class Figures:
    def __init__(self):
        self.latencies = []
        self.errors = []
        self.slow_connects = 0
        self.slow_dropped = 0


async def open_conn(host, port, rcvbuf=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    return await asyncio.open_connection(sock=sock, limit=1 << 20)


async def read_response(reader):
    """Reads one response; returns (status, body length). Content-Length responses only."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status, length


async def read_created_id(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return json.loads(await reader.readexactly(length))["id"]


async def slow_client(kind, host, port, image_id, big_id, stop, fig):
    while not stop.is_set():
        fig.slow_connects += 1
        writer = None
        try:
            reader, writer = await open_conn(host, port, rcvbuf=4096 if kind == "reader" else None)
            patch = (f"PATCH /v2/images/{image_id} HTTP/1.1\r\nHost: {host}\r\n"
                     "Content-Type: application/openstack-images-v2.1-json-patch\r\n"
                     "Content-Length: 400\r\n\r\n")
            if kind == "stall":
                writer.write(patch.encode() + b"[{")
                await writer.drain()
                await reader.read(65536)  # returns when the server gives up on us
            elif kind in ("drip", "upload"):
                if kind == "drip":
                    writer.write(patch.encode())
                else:
                    # An image of its own to upload to, created on the same connection.
                    body = b'{"name": "slow", "disk_format": "raw", "container_format": "bare"}'
                    writer.write((f"POST /v2/images HTTP/1.1\r\nHost: {host}\r\n"
                                  "Content-Type: application/json\r\n"
                                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
                    new_id = await read_created_id(reader)
                    writer.write((f"PUT /v2/images/{new_id}/file HTTP/1.1\r\nHost: {host}\r\n"
                                  "Content-Type: application/octet-stream\r\n"
                                  f"Content-Length: {1 << 30}\r\n\r\n").encode())
                while not stop.is_set():
                    writer.write(b"x")
                    await writer.drain()
                    try:
                        data = await asyncio.wait_for(reader.read(65536), 2)
                        if not data:
                            break  # dropped
                    except asyncio.TimeoutError:
                        pass
            elif kind == "loris":
                head = f"GET /v2/images HTTP/1.1\r\nHost: {host}\r\nX-Pad: " + "a" * 200
                for ch in head:
                    if stop.is_set():
                        break
                    writer.write(ch.encode())
                    await writer.drain()
                    try:
                        data = await asyncio.wait_for(reader.read(65536), 1)
                        if not data:
                            break
                    except asyncio.TimeoutError:
                        pass
            elif kind == "reader":
                writer.write(f"GET /v2/images/{big_id}/file HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                await writer.drain()
                while not stop.is_set():
                    data = await reader.read(1024)
                    if not data:
                        break
                    await asyncio.sleep(1)
            else:  # idle
                await reader.read(65536)
            fig.slow_dropped += 1
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            fig.slow_dropped += 1
        finally:
            if writer:
                writer.close()
        await asyncio.sleep(0.05)


async def normal_client(host, port, image_id, stop, fig):
    paths = ["/v2/images?limit=5", f"/v2/images/{image_id}", "/healthcheck",
             f"/v2/images/{image_id}/file"]
    reader = writer = None
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        start = time.monotonic()
        try:
            if writer is None:
                reader, writer = await open_conn(host, port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            status, _ = await asyncio.wait_for(read_response(reader), 10)
            fig.latencies.append(time.monotonic() - start)
            if status != 200:
                fig.errors.append(f"{path}: HTTP {status}")
        except Exception as e:  # any failure of a normal request is an error of the run
            fig.latencies.append(time.monotonic() - start)
            fig.errors.append(f"{path}: {type(e).__name__} {e}")
            if writer:
                writer.close()
            reader = writer = None
        await asyncio.sleep(0.05)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("image_id")
    ap.add_argument("big_id")
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--normal", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    host, port = u.hostname, u.port
    stop = asyncio.Event()
    fig = Figures()
    tasks = [asyncio.create_task(slow_client(KINDS[i % len(KINDS)], host, port, a.image_id,
                                             a.big_id, stop, fig)) for i in range(a.slow)]
    await asyncio.sleep(2)  # let the slow clients take their places first
    tasks += [asyncio.create_task(normal_client(host, port, a.image_id, stop, fig))
              for _ in range(a.normal)]
    await asyncio.sleep(a.seconds)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    lat = sorted(fig.latencies)
    if not lat:
        print("no normal requests were made")
        return 1
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print(f"normal requests {len(lat)}  errors {len(fig.errors)}  p50 {p50:.1f} ms  "
          f"p99 {p99:.1f} ms  max {lat[-1] * 1000:.1f} ms  slow connections {fig.slow_connects} "
          f"(dropped by the server or finished: {fig.slow_dropped})")
    for e in fig.errors[:10]:
        print("  error:", e)
    return 0 if not fig.errors and p99 < 100 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
