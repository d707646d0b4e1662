"""Randomized transactions with confluent-kafka, surviving a broker SIGKILL.

Several transactional producers run rounds concurrently (commit, abort, or abandon the
transaction so the coordinator times it out) on several partitions, interleaved with an
idempotent non-transactional producer. The script prints READY when the producers run; the
test harness kills the broker (SIGKILL) and restarts it meanwhile. Afterwards a read_committed
consumer must see exactly: every record of every committed transaction and every acknowledged
non-transactional record, once; nothing of aborted or timed-out transactions; transactions whose
outcome the client could not learn (the broker died under the commit) all or nothing; each
producer's records in production order per partition.

    python confluent_random.py <bootstrap> <topic-prefix>
    env: QUILL_TXN_SEED, QUILL_TXN_DURATION_S (10), QUILL_TXN_WORKERS (4)
"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402

import ck  # noqa: E402
from common import Deadline, check, run, step, topic_name  # noqa: E402

SEED = int(os.environ.get("QUILL_TXN_SEED", str(int(time.time()))))
DURATION_S = float(os.environ.get("QUILL_TXN_DURATION_S", "10"))
WORKERS = int(os.environ.get("QUILL_TXN_WORKERS", "4"))
PARTITIONS = 3
TXN_TIMEOUT_MS = 4000

lock = threading.Lock()
# transaction name -> (outcome, [(partition, value)]); outcome: committed, aborted, timeout, uncertain
transactions = {}
plain_acked = set()
plain_uncertain = set()
failures = []


def record(name, outcome, values):
    with lock:
        transactions[name] = (outcome, values)


def new_producer(transactional_id):
    producer = Producer(dict(ck.BASE, **{"transactional.id": transactional_id,
                                         "transaction.timeout.ms": TXN_TIMEOUT_MS,
                                         "socket.timeout.ms": TXN_TIMEOUT_MS,
                                         "linger.ms": 2, "message.timeout.ms": TXN_TIMEOUT_MS}))
    deadline = Deadline(60, "init_transactions(%s)" % transactional_id)
    while True:
        try:
            producer.init_transactions(10)
            return producer
        except KafkaException as error:
            if not error.args[0].retriable():
                raise
            deadline.check(str(error))


def retry(call, what):
    """Runs a transactional call, retrying while librdkafka says the error is retriable."""
    deadline = Deadline(60, what)
    while True:
        try:
            call()
            return
        except KafkaException as error:
            if not error.args[0].retriable():
                raise
            deadline.check(str(error))
            time.sleep(0.2)


def run_round(producer, topic, rng, name, kind):
    values = [(rng.randrange(PARTITIONS), "%s-%d" % (name, k)) for k in range(rng.randint(1, 5))]
    try:
        producer.begin_transaction()
        for partition, value in values:
            producer.produce(topic, value=value, partition=partition)
            producer.poll(0)
        if kind == "timeout":
            producer.flush(10)
            record(name, "timeout", values)
            return "abandon"
        if kind == "abort":
            if rng.random() < 0.5:
                producer.flush(10)  # half of the aborts have their records in the log
            retry(lambda: producer.abort_transaction(10), "abort " + name)
            record(name, "aborted", values)
            return "ok"
        retry(lambda: producer.commit_transaction(10), "commit " + name)
        record(name, "committed", values)
        return "ok"
    except KafkaException as error:
        kafka_error = error.args[0]
        if kafka_error.txn_requires_abort():
            try:
                retry(lambda: producer.abort_transaction(10), "abort after error " + name)
                record(name, "aborted", values)
                return "ok"
            except KafkaException:
                pass
        print("round %s: outcome unknown after %s" % (name, kafka_error), flush=True)
        record(name, "uncertain", values)
        return "recreate"


def transactional_worker(index, topic, end):
    rng = random.Random(SEED * 1000 + index)
    generation = 0
    round_number = 0
    try:
        producer = new_producer("%s-w%d-g%d" % (topic, index, generation))
        while time.monotonic() < end:
            round_number += 1
            kind = rng.choices(["commit", "abort", "timeout"], [6, 3, 1])[0]
            outcome = run_round(producer, topic, rng, "w%d-r%d" % (index, round_number), kind)
            if outcome == "ok":
                continue
            # "abandon": the transaction is never ended. Dropping the instance destroys it, and
            # librdkafka sends no EndTxn on destroy, so the coordinator must abort it after
            # transaction.timeout.ms, as for a crashed producer. Abandoned instances kept alive
            # would hold three connections each (bootstrap, broker, coordinator), and a faster
            # machine abandons more, until the broker's max.connections.per.ip (800) refuses
            # the next producers. Continue under a new transactional id.
            producer = None
            generation += 1
            producer = new_producer("%s-w%d-g%d" % (topic, index, generation))
    except BaseException as error:  # noqa: BLE001 - reported by the main thread
        with lock:
            failures.append("worker %d: %r" % (index, error))


def plain_worker(topic, end):
    rng = random.Random(SEED)
    producer = ck.producer(**{"enable.idempotence": True, "message.timeout.ms": 60000})

    def report(value):
        def callback(error, _message):
            with lock:
                if error is None:
                    plain_acked.add(value)
                else:
                    plain_uncertain.add(value)
        return callback

    count = 0
    while time.monotonic() < end:
        value = "plain-%d" % count
        count += 1
        producer.produce(topic, value=value, partition=rng.randrange(PARTITIONS), on_delivery=report(value))
        producer.poll(0)
        time.sleep(0.005)
    remaining = producer.flush(90)
    if remaining:
        with lock:
            failures.append("plain producer: %d messages never delivered" % remaining)


def read_committed(topic):
    """Reads every partition to its end once no transaction is open any more.

    The end is the high watermark seen by a read_uncommitted client: a read_committed client's
    watermark is the last stable offset, which stops before a transaction that is still open
    (an abandoned one waits for transaction.timeout.ms), so reaching it proves nothing about the
    committed records behind it."""
    consumer = Consumer(dict(ck.BASE, **{"group.id": "%s-check" % topic, "enable.auto.commit": False,
                                         "isolation.level": "read_committed",
                                         "fetch.wait.max.ms": 100}))
    watermarks = Consumer(dict(ck.BASE, **{"group.id": "%s-watermarks" % topic,
                                           "isolation.level": "read_uncommitted"}))
    seen = {p: [] for p in range(PARTITIONS)}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline = Deadline(90, "read_committed consumer reaching the end of every partition")
        quiet_since = time.monotonic()
        while True:
            message = consumer.poll(0.2)
            if message is not None:
                if message.error():
                    raise KafkaException(message.error())
                seen[message.partition()].append(message.value().decode())
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since < 2:
                continue
            positions = consumer.position([TopicPartition(topic, p) for p in range(PARTITIONS)])
            highs = [watermarks.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                     for p in range(PARTITIONS)]
            if all(tp.offset >= high for tp, high in zip(positions, highs)):
                return seen
            deadline.check("positions %s, high watermarks %s" % ([tp.offset for tp in positions], highs))
    finally:
        consumer.close()
        watermarks.close()


def verify(seen):
    everything = [value for values in seen.values() for value in values]
    counts = {}
    for value in everything:
        counts[value] = counts.get(value, 0) + 1
    duplicates = sorted(v for v, c in counts.items() if c > 1)
    check(not duplicates, "duplicated records: %s" % duplicates[:20])
    present = set(counts)
    produced = set(plain_acked) | set(plain_uncertain)
    summary = {}
    for name, (outcome, values) in transactions.items():
        summary[outcome] = summary.get(outcome, 0) + 1
        names = {value for _, value in values}
        produced |= names
        found = names & present
        if outcome == "committed":
            check(found == names, "committed %s: missing %s" % (name, sorted(names - found)))
        elif outcome in ("aborted", "timeout"):
            check(not found, "%s %s: visible to read_committed: %s" % (outcome, name, sorted(found)))
        else:
            check(not found or found == names, "uncertain %s: only part visible: %s" % (name, sorted(found)))
        for partition, value in values:
            if value in present:
                check(value in seen[partition], "%s read from the wrong partition" % value)
    missing_plain = sorted(plain_acked - present)
    check(not missing_plain, "acknowledged plain records missing: %s" % missing_plain[:20])
    unknown = sorted(present - produced)
    check(not unknown, "records nobody produced: %s" % unknown[:20])
    # Production order per producer and partition.
    for partition, values in seen.items():
        last = {}
        for value in values:
            parts = value.split("-")
            if parts[0] == "plain":
                key, position = "plain", (int(parts[1]),)
            else:
                key, position = parts[0], (int(parts[1][1:]), int(parts[2]))
            check(last.get(key, ()) < position,
                  "partition %d: %s after %s for %s" % (partition, value, last.get(key), key))
            last[key] = position
    print("verified: %s transactions %s, %d plain acked, %d uncertain plain, %d records read"
          % (len(transactions), summary, len(plain_acked), len(plain_uncertain), len(everything)), flush=True)


def scenario():
    print("seed %d" % SEED, flush=True)
    topic = topic_name("random")
    step("create")
    ck.create_topics([(topic, PARTITIONS, {})])
    step("produce")
    end = time.monotonic() + DURATION_S
    threads = [threading.Thread(target=transactional_worker, args=(i, topic, end), daemon=True)
               for i in range(WORKERS)]
    threads.append(threading.Thread(target=plain_worker, args=(topic, end), daemon=True))
    for thread in threads:
        thread.start()
    print("READY", flush=True)
    for thread in threads:
        thread.join(DURATION_S + 150)
        check(not thread.is_alive(), "a producer thread hung")
    check(not failures, "producer failures: %s" % failures)
    step("verify")
    verify(read_committed(topic))


run(scenario)
