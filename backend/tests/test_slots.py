"""FifoSlots: bounded concurrency, and waiters served in arrival order."""

from __future__ import annotations

import threading
import time

from api.slots import FifoSlots


def test_never_more_than_the_slots_at_once():
    slots, inside, peak, lock = FifoSlots(2), [0], [0], threading.Lock()

    def work() -> None:
        with slots:
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.01)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert peak[0] == 2 and inside[0] == 0


def test_waiters_get_the_slot_in_arrival_order():
    slots, order = FifoSlots(1), []
    slots.__enter__()  # hold the only slot while the others line up

    def work(i: int) -> None:
        with slots:
            order.append(i)

    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=work, args=(i,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while len(slots._waiters) < i + 1 and time.monotonic() < deadline:  # queued before the next starts
            time.sleep(0.001)
    slots.__exit__(None, None, None)
    for t in threads:
        t.join(timeout=10)
    assert order == list(range(6))


def test_a_waiter_that_times_out_leaves_the_queue_and_loses_no_slot():
    slots = FifoSlots(1)
    assert slots.acquire(timeout_s=0)
    started = time.monotonic()
    assert slots.acquire(timeout_s=0.05) is False
    assert 0.04 < time.monotonic() - started < 2
    assert not slots._waiters
    slots.release()
    assert slots.acquire(timeout_s=0)  # the slot came back, not to the waiter that left
    slots.release()
