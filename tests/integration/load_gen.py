#!/usr/bin/python3
"""The load generator of tests/integration/load.sh: N clients against a cluster behind HAProxy.

  load_gen.py run --lb URL --node node1=URL ... --out DIR [--clients 64] [--duration 300]
  load_gen.py verify --node node1=URL ... --out DIR
  load_gen.py report --out DIR --kills FILE

`run` drives --clients threads for --duration seconds, each looping over a mix of image creates,
uploads of 1-64 MiB (log-uniform sizes, bytes generated per image, MD5 computed on the way out),
downloads (MD5 checked against what was uploaded), list pages and deletes, all through the balancer.
One more thread checks cache coherence between nodes every few seconds: an image read through
every node (so that each node's image cache holds it) is deactivated or deleted through one node and
then asked for through the others, which must refuse it and never send its bytes; it also records
how long the other nodes' caches kept the entry (the periodic sweep drops it).

Every request is one line of DIR/requests.jsonl: start and end (epoch seconds), operation, HTTP
status (0: no answer, -1: the body broke off), the node that answered (HAProxy's X-Backend header)
and the error. Images whose upload was acknowledged (204) and not deleted are in DIR/acked.json
with their MD5 and size; deleted ones in DIR/deleted.json.

`verify` downloads every acknowledged image from every node directly and checks its MD5, and checks
that every deleted image is refused (404) by every node. `report` classifies the 5xx answers and
broken requests against the kills (lines "SENT GONE nodeI" in --kills: when SIGKILL was sent and
when the process was gone; a dying process still holds its listening socket, so connections the
balancer makes in between are reset): a failure is explained when the death of the node that served
it (or of any node, when the balancer did not say which) overlapped the request. It prints the counts and exits 1 when an acknowledged
image was lost or corrupted, a failure is unexplained, or a coherence check saw the bytes of a
deleted or deactivated image.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import struct
import sys
import threading
import time
import urllib.parse

MIB = 1 << 20
TIMEOUT = 300  # HAProxy's server timeout in the test bed


class Client:
    """One keep-alive connection to one base URL, reopened after any failure."""

    def __init__(self, url, token):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.token = token
        self.conn = None
        self.answered = False  # the open connection has carried an answer (keep-alive reuse)
        self.retried = False  # the last request was sent twice (see request)

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def request(self, method, path, body=None, headers=None, sink=None):
        """Returns (status, backend, bytes read into sink or the body, error). status 0: no
        answer; -1: the answer's body broke off.

        As HTTP clients do (RFC 9110, 9.2.2), an idempotent request without a body whose reused
        keep-alive connection closed before any answer is sent once more on a new connection:
        the balancer keeps idle connections to each node, and one to a node that just died may
        carry a request before the balancer has seen the node go."""
        h = {"X-Auth-Token": self.token}
        if headers:
            h.update(headers)
        backend = None
        self.retried = False
        while True:
            reused = self.conn is not None and self.answered
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
                    self.answered = False
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                self.answered = True
                break
            except Exception as e:  # the connection broke before an answer
                self.close()
                if (reused and not self.retried and body is None and
                        method in ("GET", "HEAD", "DELETE") and
                        isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError,
                                       BrokenPipeError))):
                    self.retried = True
                    continue
                return 0, None, None, "%s: %s" % (type(e).__name__, e)
        backend = r.getheader("X-Backend")
        try:
            if sink is not None and r.status == 200:
                # http.client's read(n) returns b"" when the connection closes early, without
                # raising: a body shorter than its Content-Length is a broken answer, not data.
                want = r.getheader("Content-Length")
                got = 0
                while True:
                    chunk = r.read(MIB)
                    if not chunk:
                        break
                    got += len(chunk)
                    sink(chunk)
                if want is not None and got != int(want):
                    self.close()
                    return -1, backend, None, "body ended after %d of %s bytes" % (got, want)
                data = None
            else:
                data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, backend, data, None
        except Exception as e:  # the body broke off
            self.close()
            return -1, backend, None, "%s: %s" % (type(e).__name__, e)


def image_bytes(seed, size):
    """The bytes of an image: a random 1 MiB block, rotated and numbered per MiB, so that no two
    MiB are the same and a misplaced one changes the MD5."""
    block = random.Random(seed).randbytes(MIB)
    off = 0
    i = 0
    while off < size:
        r = (i * 4099) % MIB
        chunk = struct.pack("<Q", i) + (block[r:] + block[:r])[8:]
        n = min(MIB, size - off)
        yield chunk[:n]
        off += n
        i += 1


def md5_of(seed, size):
    h = hashlib.md5()
    for c in image_bytes(seed, size):
        h.update(c)
    return h.hexdigest()


class State:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.log = open(os.path.join(out, "requests.jsonl"), "a", buffering=1)
        self.acked = {}  # id -> {"md5", "size"}
        self.live = []  # acknowledged ids clients may read or delete
        self.readers = {}  # id -> downloads under way
        self.deleted = []
        self.uncertain = []  # delete sent, answer lost
        self.corrupt = []  # downloads whose MD5 differed
        self.coherence = {"checks": 0, "violations": 0, "primed": 0, "pruned": 0,
                          "not_pruned": 0, "unobserved": 0, "details": []}
        self.counts = {}

    def record(self, t0, op, status, backend, err, retried=False):
        line = {"t0": round(t0, 3), "t1": round(time.time(), 3), "op": op, "status": status,
                "backend": backend}
        if err:
            line["err"] = err[:200]
        if retried:
            line["retried"] = True
        with self.lock:
            self.log.write(json.dumps(line) + "\n")
            self.counts[op] = self.counts.get(op, 0) + 1
        if status <= 0 or status >= 500:
            time.sleep(0.5)  # back off, as a client would, instead of spinning on a failure

    def save(self):
        with self.lock:
            for name, value in (("acked", self.acked), ("deleted", self.deleted),
                                ("uncertain", self.uncertain), ("corrupt", self.corrupt),
                                ("coherence", self.coherence), ("counts", self.counts)):
                with open(os.path.join(self.out, name + ".json"), "w") as f:
                    json.dump(value, f, indent=1)


def create_and_upload(c, st, rnd, name, size):
    """Returns the image id when the upload was acknowledged (204), else None."""
    t0 = time.time()
    body = json.dumps({"name": name, "disk_format": "raw", "container_format": "bare"})
    status, backend, data, err = c.request("POST", "/v2/images", body,
                                           {"Content-Type": "application/json"})
    st.record(t0, "create", status, backend, err)
    if status != 201:
        return None
    image_id = json.loads(data)["id"]
    seed = rnd.getrandbits(63)
    t0 = time.time()
    status, backend, _, err = c.request(
        "PUT", "/v2/images/%s/file" % image_id, image_bytes(seed, size),
        {"Content-Type": "application/octet-stream", "Content-Length": str(size)})
    st.record(t0, "upload", status, backend, err)
    if status != 204:
        return None
    md5 = md5_of(seed, size)
    with st.lock:
        st.acked[image_id] = {"md5": md5, "size": size}
    return image_id


def download_md5(c, image_id):
    h = hashlib.md5()
    n = [0]

    def sink(chunk):
        h.update(chunk)
        n[0] += len(chunk)

    status, backend, _, err = c.request("GET", "/v2/images/%s/file" % image_id, sink=sink)
    return status, backend, h.hexdigest(), n[0], err


def client_loop(st, lb, token, deadline, index, max_live):
    rnd = random.Random(index * 7919 + int(time.time()))
    c = Client(lb, token)
    while time.time() < deadline:
        with st.lock:
            live = len(st.live)
        roll = rnd.random()
        if live < 4 or (roll < 0.25 and live < max_live):
            size = int(2 ** rnd.uniform(20, 26))  # 1-64 MiB, log-uniform
            image_id = create_and_upload(c, st, rnd, "load-%d" % index, size)
            if image_id:
                with st.lock:
                    st.live.append(image_id)
        elif roll < 0.65:
            with st.lock:
                if not st.live:
                    continue
                image_id = rnd.choice(st.live)
                st.readers[image_id] = st.readers.get(image_id, 0) + 1
                want = st.acked[image_id]
            t0 = time.time()
            status, backend, md5, n, err = download_md5(c, image_id)
            if status == 200 and (md5 != want["md5"] or n != want["size"]):
                err = "MD5 %s of %d bytes, uploaded %s of %d" % (md5, n, want["md5"], want["size"])
                with st.lock:
                    st.corrupt.append({"id": image_id, "backend": backend, "err": err})
            st.record(t0, "download", status, backend, err, c.retried)
            with st.lock:
                st.readers[image_id] -= 1
        elif roll < 0.85:
            t0 = time.time()
            status, backend, _, err = c.request("GET", "/v2/images?limit=25")
            st.record(t0, "list", status, backend, err, c.retried)
        else:
            with st.lock:
                idle = [i for i in st.live if st.readers.get(i, 0) == 0]
                if not idle:
                    continue
                image_id = rnd.choice(idle)
                st.live.remove(image_id)
            t0 = time.time()
            status, backend, _, err = c.request("DELETE", "/v2/images/%s" % image_id)
            st.record(t0, "delete", status, backend, err, c.retried)
            with st.lock:
                want = st.acked.pop(image_id)
                if status == 204:
                    st.deleted.append(image_id)
                else:
                    # The answer was lost (a node died): deleted or not; checked at the end.
                    st.uncertain.append({"id": image_id, "md5": want["md5"]})
    c.close()


def cached_on(node_url, admin, image_id):
    """Whether node's cache lists image_id; None when the node did not answer."""
    status, _, data, _ = Client(node_url, admin).request("GET", "/v2/cache")
    if status != 200:
        return None
    return any(e.get("image_id") == image_id for e in json.loads(data).get("cached_images", []))


def coherence_loop(st, lb, nodes, member, admin, deadline, every, sweep_wait):
    """Deactivate or delete through one node, then read through the others: never the bytes."""
    rnd = random.Random(42)
    c = Client(lb, member)
    round_no = 0
    while time.time() + every < deadline:
        time.sleep(every)
        round_no += 1
        image_id = create_and_upload(c, st, rnd, "coherence-%d" % round_no, MIB + round_no)
        if not image_id:
            continue
        with st.lock:
            st.acked.pop(image_id, None)  # this thread's own: verified here, not at the end
        # Read through every node that is up, so that each one's cache holds it.
        primed = []
        for name, url in nodes:
            status, _, _, _, _ = download_md5(Client(url, member), image_id)
            if status == 200 and cached_on(url, admin, image_id):
                primed.append((name, url))
        if len(primed) < 2:
            continue  # a node is down right now; the next round tries again
        with st.lock:
            st.coherence["primed"] += 1
        actor, others = primed[0], primed[1:]
        action = "deactivate" if round_no % 2 else "delete"
        if action == "deactivate":
            status, _, _, _ = Client(actor[1], admin).request(
                "POST", "/v2/images/%s/actions/deactivate" % image_id)
            refused = (403,)
        else:
            status, _, _, _ = Client(actor[1], member).request("DELETE", "/v2/images/%s" % image_id)
            refused = (404,)
        if status != 204:
            continue  # the actor died under us
        for name, url in others:
            status, _, md5, n, _ = download_md5(Client(url, member), image_id)
            with st.lock:
                st.coherence["checks"] += 1
                if status == 200 or n > 0 or (status > 0 and status not in refused):
                    st.coherence["violations"] += 1
                    st.coherence["details"].append(
                        "%s through %s, then GET through %s: HTTP %d, %d bytes" %
                        (action, actor[0], name, status, n))
        # The other nodes' sweeps drop the entry (sweep_interval_ms in the cluster's config).
        t_end = time.time() + sweep_wait
        pending = dict(others)
        unobserved = 0
        while pending and time.time() < t_end:
            time.sleep(0.5)
            for name, url in list(pending.items()):
                cached = cached_on(url, admin, image_id)
                if cached is None:  # killed meanwhile: its restart's first sweep will do it
                    unobserved += 1
                if not cached:
                    del pending[name]
        with st.lock:
            st.coherence["pruned"] += len(others) - len(pending) - unobserved
            st.coherence["not_pruned"] += len(pending)
            st.coherence["unobserved"] += unobserved
        if action == "deactivate":
            Client(lb, admin).request("DELETE", "/v2/images/%s" % image_id)
    c.close()


def cmd_run(a):
    os.makedirs(a.out, exist_ok=True)
    st = State(a.out)
    nodes = [tuple(n.split("=", 1)) for n in a.node]
    deadline = time.time() + a.duration
    threads = [threading.Thread(target=client_loop,
                                args=(st, a.lb, a.member, deadline, i, a.max_live), daemon=True)
               for i in range(a.clients)]
    threads.append(threading.Thread(
        target=coherence_loop,
        args=(st, a.lb, nodes, a.member, a.admin, deadline, a.coherence_every, a.sweep_wait),
        daemon=True))
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(5)
        st.save()
        with st.lock:
            print("load: %ds left, %s, %d live images" % (
                max(0, deadline - time.time()), json.dumps(st.counts), len(st.live)), flush=True)
        if time.time() > deadline + 2 * TIMEOUT:
            print("load: clients still busy %d s after the end" % (2 * TIMEOUT), file=sys.stderr)
            break
    st.save()
    return 0


def cmd_verify(a):
    nodes = [tuple(n.split("=", 1)) for n in a.node]
    load = lambda n: json.load(open(os.path.join(a.out, n + ".json")))
    acked, deleted, uncertain = load("acked"), load("deleted"), load("uncertain")
    res = {"images": len(acked), "checked": 0, "lost": [], "corrupted": [], "deleted_served": [],
           "uncertain_bad": []}
    for image_id, want in sorted(acked.items()):
        for name, url in nodes:
            status, _, md5, n, err = download_md5(Client(url, a.member), image_id)
            res["checked"] += 1
            if status != 200:
                res["lost"].append("%s via %s: HTTP %d %s" % (image_id, name, status, err or ""))
            elif md5 != want["md5"] or n != want["size"]:
                res["corrupted"].append("%s via %s: MD5 %s of %d bytes, uploaded %s of %d" %
                                        (image_id, name, md5, n, want["md5"], want["size"]))
    for image_id in deleted:
        for name, url in nodes:
            status, _, _, n, _ = download_md5(Client(url, a.member), image_id)
            if status != 404 or n > 0:
                res["deleted_served"].append("%s via %s: HTTP %d, %d bytes" %
                                             (image_id, name, status, n))
    for u in uncertain:  # a delete whose answer was lost: gone, or still whole
        for name, url in nodes:
            status, _, md5, n, _ = download_md5(Client(url, a.member), u["id"])
            if status not in (200, 404) or (status == 200 and md5 != u["md5"]):
                res["uncertain_bad"].append("%s via %s: HTTP %d" % (u["id"], name, status))
    json.dump(res, open(os.path.join(a.out, "verify.json"), "w"), indent=1)
    print("verify: %d acknowledged images, %d downloads from %d nodes: %d lost, %d corrupted; "
          "%d deleted images refused by every node (%d served); %d uncertain deletes, %d bad" % (
              len(acked), res["checked"], len(nodes), len(res["lost"]), len(res["corrupted"]),
              len(deleted), len(res["deleted_served"]), len(uncertain), len(res["uncertain_bad"])))
    return 0


def cmd_report(a):
    kills = []
    if os.path.exists(a.kills):
        for line in open(a.kills):
            parts = line.split()
            if len(parts) == 3:
                kills.append((float(parts[0]), float(parts[1]), parts[2]))
            elif len(parts) == 2:
                kills.append((float(parts[0]), float(parts[0]), parts[1]))
    by_status = {}
    total = 0
    retried = 0
    refused_uploads = []
    explained, unexplained = 0, []
    for line in open(os.path.join(a.out, "requests.jsonl")):
        r = json.loads(line)
        total += 1
        s = r["status"]
        by_status[s] = by_status.get(s, 0) + 1
        retried += 1 if r.get("retried") else 0
        if r["op"] == "upload" and 400 <= s < 500:
            refused_uploads.append(r)
        if 0 < s < 500:
            continue
        # In flight on a node while it died: the request and the node's death overlap.
        if any(r["t0"] - 0.05 <= gone and sent <= r["t1"] + 0.05 and r["backend"] in (None, node)
               for sent, gone, node in kills):
            explained += 1
        else:
            unexplained.append(r)
    load = lambda n: json.load(open(os.path.join(a.out, n + ".json")))
    corrupt, coherence, verify = load("corrupt"), load("coherence"), load("verify")
    print("requests: %d; by status: %s" % (total, json.dumps(
        {str(k): v for k, v in sorted(by_status.items())})))
    print("kills: %d (%s)" % (len(kills), ", ".join("%s at %.1f (gone %.2f s later)" % (n, k, g - k) for k, g, n in kills)))
    print("5xx or broken: %d in flight on a node when it was killed, %d unexplained" %
          (explained, len(unexplained)))
    print("idempotent requests sent again after a reused connection closed unanswered: %d" %
          retried)
    # Not a failure of this test's rules (nothing acknowledged is lost), but a client would see it:
    # an upload refused mid-way, e.g. because another node's start-up repair reset its image.
    print("uploads refused with 4xx: %d%s" % (len(refused_uploads), "".join(
        "\n  refused upload: %s" % json.dumps(r) for r in refused_uploads[:10])))
    for r in unexplained[:20]:
        print("  unexplained: %s" % json.dumps(r))
    print("downloads during the load with a wrong MD5: %d" % len(corrupt))
    for c in corrupt[:10]:
        print("  corrupt: %s" % json.dumps(c))
    print("coherence: %d rounds with every node's cache primed, %d reads through other nodes "
          "after a deactivate/delete, %d served the bytes; cache entries swept on the other "
          "nodes: %d, still cached after the wait: %d (node killed meanwhile: %d)" % (
              coherence["primed"], coherence["checks"], coherence["violations"],
              coherence["pruned"], coherence["not_pruned"], coherence["unobserved"]))
    for d in coherence["details"][:10]:
        print("  violation: %s" % d)
    print("acknowledged images: %d, lost %d, corrupted %d; deleted images served: %d; "
          "uncertain deletes in a bad state: %d" % (
              verify["images"], len(verify["lost"]), len(verify["corrupted"]),
              len(verify["deleted_served"]), len(verify["uncertain_bad"])))
    for key in ("lost", "corrupted", "deleted_served", "uncertain_bad"):
        for d in verify[key][:10]:
            print("  %s: %s" % (key, d))
    bad = (unexplained or corrupt or coherence["violations"] or verify["lost"] or
           verify["corrupted"] or verify["deleted_served"] or verify["uncertain_bad"])
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("run", "verify", "report"):
        s = sub.add_parser(name)
        s.add_argument("--out", required=True)
        s.add_argument("--node", action="append", default=[], help="nodeI=URL, each node")
        s.add_argument("--member", default="t-member")
        s.add_argument("--admin", default="t-admin")
        if name == "run":
            s.add_argument("--lb", required=True)
            s.add_argument("--clients", type=int, default=64)
            s.add_argument("--duration", type=float, default=300)
            s.add_argument("--max-live", type=int, default=24)
            s.add_argument("--coherence-every", type=float, default=10)
            s.add_argument("--sweep-wait", type=float, default=10)
        if name == "report":
            s.add_argument("--kills", required=True)
    a = p.parse_args()
    return {"run": cmd_run, "verify": cmd_verify, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
