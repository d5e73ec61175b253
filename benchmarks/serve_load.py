"""Load on `punktraits serve`: N requests from C concurrent clients on 127.0.0.1.

    python benchmarks/serve_load.py --requests 500 --clients 8

Starts the real server (a subprocess, default model, no gallery) once per setting (worker
processes x torch threads), then each client thread sends POST /api/predict with its own
keep-alive connection, cycling over real punks rendered as x8 PNG or x8 JPEG (q85) on the
collection's blue. Reports throughput, latency
percentiles, non-200 answers, answers whose traits differ from the punk's visible labels, the
server's peak RSS, and how evenly the load fell on its processes (the busiest one's part of the
server's CPU time: 0.5 when two workers share it evenly, ~1.0 when one does it all). Needs the data (PUNKTRAITS_DATA or --data-dir).

    python benchmarks/serve_load.py --flood punks:100,explain:200

Floods: that many clients at once, each with one request (GET /api/punks/{id}, or POST
/api/explain of an x8 PNG), retrying on 503 after its Retry-After until answered; meanwhile
/api/health is asked every 0.25 s. Reports the first answers (200 / 503 busy), the time until all
were answered, health's slowest answer, and the server's RSS: idle before, peak (sampled every
20 ms, and VmHWM), and 5 s after the flood. --pythonpath runs the server from another source
tree (an older commit, for a before/after).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from punktraits import data as D

BLUE = (0x63, 0x85, 0x96)
BOUNDARY = "punktraitsbench"


def render(punk: np.ndarray, fmt: str) -> bytes:
    im = Image.fromarray(punk, "RGBA").resize((192, 192), Image.NEAREST)
    buf = io.BytesIO()
    if fmt == "jpeg":
        flat = Image.new("RGB", im.size, BLUE)
        flat.paste(im, mask=im.getchannel("A"))
        flat.save(buf, format="JPEG", quality=85)
    else:
        im.save(buf, format="PNG")
    return buf.getvalue()


def form(body: bytes, name: str) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return head.encode() + body + f"\r\n--{BOUNDARY}--\r\n".encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree(pid: int) -> list[int]:
    """The server and every process under it (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").iterdir():
            todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def tree_rss_mib(pid: int) -> float:
    """Peak RSS of the server and its worker processes, summed (Linux /proc)."""
    return sum(peak_rss_mib(p) for p in tree(pid))


def cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time (user + system) so far of each process of the server's tree."""
    out = {}
    for p in tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        out[p] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def run(args, fmt: str, workers: int, threads: int, punks: D.Punks) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "punktraits", "serve", "--port", str(port), "--no-gallery",
         "--threads", str(threads), "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        ids = np.random.default_rng(0).choice(len(punks), 64, replace=False)
        bodies = [form(render(punks.images[i], fmt), f"{i}.{fmt}") for i in ids]
        want = [{punks.traits[j] for j in np.flatnonzero(punks.visible[i])} for i in ids]
        latencies: list[float] = []
        statuses: list[int] = []
        mismatches = 0
        lock = threading.Lock()
        counter = iter(range(args.requests))

        def client():
            nonlocal mismatches
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
            while True:
                with lock:
                    k = next(counter, None)
                if k is None:
                    break
                t0 = time.perf_counter()
                if not args.keep_alive:
                    conn.close()  # the next request opens a new connection
                conn.request("POST", "/api/predict", body=bodies[k % 64], headers=headers)
                r = conn.getresponse()
                payload = r.read()
                dt = time.perf_counter() - t0
                ok = r.status == 200 and (
                    {json.loads(payload)["type"], *json.loads(payload)["accessories"]}
                    == want[k % 64]
                )  # fmt: skip
                with lock:
                    latencies.append(dt)
                    statuses.append(r.status)
                    mismatches += r.status == 200 and not ok
            conn.close()

        clients = [threading.Thread(target=client) for _ in range(args.clients)]
        cpu0 = cpu_seconds(server.pid)
        t0 = time.perf_counter()
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(server.pid)
        spent = [cpu[p] - cpu0.get(p, 0.0) for p in cpu]
        lat = np.array(latencies) * 1000
        return {
            "format": fmt, "workers": workers, "threads": threads, "requests": len(statuses),
            "clients": args.clients, "seconds": round(wall, 2),
            "req_per_s": round(len(statuses) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p95_ms": round(float(np.percentile(lat, 95)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "errors": int(sum(s != 200 for s in statuses)), "wrong_traits": mismatches,
            "server_peak_rss_mib": round(tree_rss_mib(server.pid), 0),
            # how evenly the load fell: the busiest process's part of the server's CPU time
            # (1.0 with one process, 0.5 with two evenly busy)
            "busiest_cpu_share": round(max(spent) / max(sum(spent), 1e-9), 2),
        }  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)


def rss_mib(pid: int, key: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def flood(args, kind: str, clients: int, punks: D.Punks) -> dict:
    """`clients` requests of one kind at once against a fresh server with the gallery."""

    port = free_port()
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    server = subprocess.Popen(
        [sys.executable, "-m", "punktraits", "serve", "--port", str(port), "--threads",
         str(args.threads), *(["--data-dir", args.data_dir] if args.data_dir else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        bodies = [form(render(punks.images[i], "png"), f"{i}.png") for i in range(64)]
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}

        def ask(k: int) -> tuple[int, float]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            try:
                if kind == "punks":
                    conn.request("GET", f"/api/punks/{(k * 97) % 10_000}")
                else:
                    conn.request("POST", "/api/explain", body=bodies[k % 64], headers=headers)
                r = conn.getresponse()
                r.read()
                return r.status, float(r.getheader("Retry-After") or 1)
            finally:
                conn.close()

        for k in range(2):  # warm up: the first occlusion allocates what later ones reuse
            ask(k)
        time.sleep(2)
        idle = rss_mib(server.pid)
        peak, stop = [idle], threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak.append(rss_mib(server.pid))
                except OSError:
                    return
                if peak[-1] > args.kill_at_gib * 1024:  # protect the machine (an old server)
                    server.kill()
                    return
                time.sleep(0.02)

        health: list[float] = []
        health_failures = [0]

        def probe():
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    urllib.request.urlopen(base + "/api/health", timeout=5).read()
                    health.append(time.perf_counter() - t0)
                except OSError:
                    health_failures[0] += 1
                time.sleep(0.25)

        first: list[int] = []
        done: list[tuple[int, float, int]] = []  # status, seconds to the final answer, tries
        lock = threading.Lock()
        gate = threading.Barrier(clients)

        def client(k: int):
            gate.wait()
            t0, tries = time.perf_counter(), 0
            while True:
                tries += 1
                try:
                    status, retry = ask(k)
                except OSError:
                    status, retry = -1, 1.0
                if tries == 1:
                    with lock:
                        first.append(status)
                if status != 503 or tries >= 200:
                    break
                time.sleep(retry)
            with lock:
                done.append((status, time.perf_counter() - t0, tries))

        threads = [threading.Thread(target=sample), threading.Thread(target=probe)]
        for t in threads:
            t.start()
        workers = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - t0
        time.sleep(5)
        after = rss_mib(server.pid)
        stop.set()
        for t in threads:
            t.join()
        lat = np.array([d[1] for d in done if d[0] == 200])
        return {
            "case": kind, "clients": clients, "threads": args.threads,
            "first_200": first.count(200), "first_503": first.count(503),
            "first_other": len(first) - first.count(200) - first.count(503),
            "answered_200": sum(d[0] == 200 for d in done),
            "seconds_all_answered": round(wall, 1),
            "p50_s": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
            "max_s": round(float(lat.max()), 2) if len(lat) else None,
            "max_tries": max(d[2] for d in done),
            "health_max_ms": round(max(health) * 1000, 1) if health else None,
            "health_over_1s": sum(h > 1 for h in health) + health_failures[0],
            "health_asked": len(health) + health_failures[0],
            "rss_idle_mib": round(idle), "rss_peak_mib": round(max(peak)),
            "vmhwm_mib": round(rss_mib(server.pid, "VmHWM:")), "rss_after_mib": round(after),
        }  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--formats", default="png,jpeg")
    ap.add_argument(
        "--settings",
        default="1x1,1x2,2x1",
        help="server settings to compare, WORKERSxTHREADS (processes x torch threads)",
    )
    ap.add_argument("--data-dir", default=None)
    ap.add_argument(
        "--no-keep-alive",
        dest="keep_alive",
        action="store_false",
        help="a new connection per request (lets the kernel spread them over workers)",
    )
    ap.add_argument("--flood", default=None, help="KIND:CLIENTS,... with KIND punks or explain")
    ap.add_argument("--threads", type=int, default=2, help="--flood: the server's torch threads")
    ap.add_argument("--pythonpath", default=None, help="--flood: run the server from this tree")
    ap.add_argument(
        "--kill-at-gib", type=float, default=8.0, help="--flood: stop a server this big"
    )
    args = ap.parse_args()
    punks = D.load(args.data_dir, progress=False)
    print(f"# {platform.node()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")  # fmt: skip
    if args.flood:
        rows = []
        for case in args.flood.split(","):
            kind, clients = case.split(":")
            rows.append(flood(args, kind, int(clients), punks))
            print(json.dumps(rows[-1]), flush=True)
        print("\n| requests at once | first answers 200 / 503 | all answered in | p50 / max to "
              "answer | health slowest (over 1 s) | RSS idle / peak / 5 s after |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            what = "GET /api/punks/{id}" if r["case"] == "punks" else "POST /api/explain"
            print(f"| {r['clients']} × {what} | {r['first_200']} / {r['first_503']} "
                  f"| {r['seconds_all_answered']} s | {r['p50_s']} / {r['max_s']} s "
                  f"| {r['health_max_ms']} ms ({r['health_over_1s']} of {r['health_asked']}) "
                  f"| {r['rss_idle_mib']} / {r['rss_peak_mib']} / {r['rss_after_mib']} MiB |")  # fmt: skip
        return
    rows = []
    for fmt in args.formats.split(","):
        for setting in args.settings.split(","):
            workers, threads = map(int, setting.split("x"))
            r = run(args, fmt, workers, threads, punks)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print("\n| input | workers × torch threads | requests / clients | req/s | p50 ms | p95 ms "
          "| p99 ms | errors | wrong traits | server peak RSS (all processes) "
          "| busiest process's CPU share |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| x8 {r['format'].upper()} | {r['workers']} × {r['threads']} "
              f"| {r['requests']} / {r['clients']} "
              f"| {r['req_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} "
              f"| {r['errors']} | {r['wrong_traits']} | {r['server_peak_rss_mib']:.0f} MiB "
              f"| {r['busiest_cpu_share']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
