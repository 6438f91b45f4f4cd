"""What a user would write instead of the service: confluent-kafka, no framework.

Run by the `poll_cost` bench (`cargo xtask bench` installs confluent-kafka into a venv
under the target folder). Two jobs, each with the service's producer settings (linger 5
ms, batch 1,000 messages, lz4, acks all, idempotence, statistics every 5 s) and the five
headers the service puts on every record (message_id, source_id, source_type, priority,
ingested_at_ms), keyed by the record's station_id:

  poll BOOTSTRAP URL TOPIC INTERVAL_S WARM_S MEASURE_S
      poll URL on a fixed-rate schedule and produce each record of its `items`
  bulk BOOTSTRAP PATH TOPIC
      produce every line of an NDJSON file as fast as librdkafka takes them

Prints one JSON line: records acknowledged, seconds, CPU seconds of this process (all
its threads, librdkafka's included), RSS and peak RSS in MB.
"""

import json
import resource
import sys
import time
import urllib.request
import uuid

from confluent_kafka import Producer

SETTINGS = {
    "linger.ms": 5,
    "batch.num.messages": 1000,
    "compression.type": "lz4",
    "acks": "all",
    "enable.idempotence": True,
    "statistics.interval.ms": 5000,
}


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Acks:
    def __init__(self):
        self.ok = 0
        self.failed = 0
        self.first = None
        self.last = None

    def __call__(self, err, msg):
        if err is not None:
            self.failed += 1
            return
        self.ok += 1
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.last = now


def headers(source_id, source_type):
    return [
        ("message_id", uuid.uuid4().hex),
        ("source_id", source_id),
        ("source_type", source_type),
        ("priority", "normal"),
        ("ingested_at_ms", str(int(time.time() * 1000))),
    ]


def send(p, topic, value, key, hdrs, acks):
    while True:
        try:
            p.produce(topic, value=value, key=key, headers=hdrs, on_delivery=acks)
            return
        except BufferError:
            p.poll(0.05)


def poll_job(url, topic, interval, warm, measure, bootstrap):
    acks = Acks()
    p = Producer(dict(SETTINGS, **{"bootstrap.servers": bootstrap}))
    start = time.monotonic()
    deadline = start + warm + measure
    measuring = False
    polls = 0
    tick = start
    while True:
        now = time.monotonic()
        if not measuring and now >= start + warm:
            measuring = True
            t0, c0, ok0, polls0 = now, cpu_seconds(), acks.ok, polls
        if now >= deadline:
            break
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        polls += 1
        for item in body["items"]:
            value = json.dumps(item, separators=(",", ":")).encode()
            send(p, topic, value, item["station_id"], headers("poll", "http_json"), acks)
        p.poll(0)
        tick += interval
        while True:
            left = tick - time.monotonic()
            if left <= 0:
                break
            p.poll(left)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds() - c0
    ok = acks.ok - ok0
    p.flush(30)
    return {
        "records": ok,
        "polls": polls - polls0,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "failed": acks.failed,
        "rss_mb": rss_mb("VmRSS"),
        "peak_rss_mb": rss_mb("VmHWM"),
    }


def bulk_job(path, topic, bootstrap):
    acks = Acks()
    c0 = cpu_seconds()
    p = Producer(dict(SETTINGS, **{"bootstrap.servers": bootstrap}))
    sent = 0
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            if not line:
                continue
            key = json.loads(line)["station_id"]
            send(p, topic, line, key, headers("bulk", "file"), acks)
            sent += 1
            p.poll(0)
    left = p.flush(120)
    cpu = cpu_seconds() - c0
    return {
        "records": acks.ok,
        "sent": sent,
        "unflushed": left,
        "seconds": (acks.last or 0) - (acks.first or 0),
        "cpu_seconds": cpu,
        "failed": acks.failed,
        "rss_mb": rss_mb("VmRSS"),
        "peak_rss_mb": rss_mb("VmHWM"),
    }


def main():
    job, bootstrap = sys.argv[1], sys.argv[2]
    if job == "poll":
        url, topic, interval, warm, measure = sys.argv[3:8]
        out = poll_job(url, topic, float(interval), float(warm), float(measure), bootstrap)
    elif job == "bulk":
        path, topic = sys.argv[3:5]
        out = bulk_job(path, topic, bootstrap)
    else:
        sys.exit(f"unknown job {job}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
