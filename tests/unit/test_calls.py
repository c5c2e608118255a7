"""The one call counter every backend and cloud feature counts with."""

from __future__ import annotations

import threading

from hybridctl.backends.calls import CallCounter


def test_counts_reads_and_mutations_per_action() -> None:
    counter = CallCounter()
    counter.add("ec2:DescribeVpcs", False)
    counter.add("ec2:DescribeVpcs", False)
    counter.add("ec2:ReplaceRoute", True)
    counter.add("arm:PUT", True)
    assert (counter.reads, counter.mutations) == (2, 2)
    assert counter.as_dict() == {
        "read": 2,
        "mutating": 2,
        "by_action": {"arm:PUT": 1, "ec2:DescribeVpcs": 2, "ec2:ReplaceRoute": 1},
    }


def test_unnamed_calls_count_without_an_action() -> None:
    # The hosts backend counts one script run per host: read or apply, no API action.
    counter = CallCounter()
    counter.read()
    counter.read(3)
    counter.mutate()
    assert (counter.reads, counter.mutations) == (4, 1)
    assert counter.by_action == {}


def test_is_thread_safe() -> None:
    counter = CallCounter()
    per_thread = 2000

    def work(mutating: bool) -> None:
        for _ in range(per_thread):
            counter.add("arm:GET" if not mutating else "arm:PATCH", mutating)
            counter.read()

    threads = [threading.Thread(target=work, args=(i % 2 == 1,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.mutations == 4 * per_thread
    assert counter.reads == 4 * per_thread + 8 * per_thread
    assert counter.by_action == {"arm:GET": 4 * per_thread, "arm:PATCH": 4 * per_thread}
