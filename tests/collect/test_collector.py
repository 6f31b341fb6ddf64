"""The collection loop on injected fakes: engine outages, vanished containers, events, disk
usage, batching. No engine needed; the live behaviour is in test_collect_live.py."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes import T0, CountingReader, FakeClock, FakeEvents, FlakyEngine, event, info

from capacity._collect import (
    GAP_ACTION,
    Collection,
    Collector,
    ContainerEvent,
    DiskUsageSampler,
    DockerEngine,
    EventPump,
    choose_reader,
)
from capacity._errors import ContainerGone, InvalidParameter, NoContainers
from capacity.store import Store

#: interval of the fake runs, seconds
INTERVAL_S = 1.0


def test_engine_restart_during_forever_is_survived_and_the_gap_recorded(tmp_path: Path):
    """The engine stops answering for three calls (as while dockerd restarts) and comes back.

    The engine is an injected fake that fails, then recovers: the real dockerd is never
    restarted, since other engineers' tests run on it at the same time.
    """
    clock = FakeClock()
    engine = FlakyEngine([info(0), info(1)], fail_from=3, failures=3)
    with Store(tmp_path / "s.sqlite", batch_rounds=4) as store:
        collector = Collector(
            engine, CountingReader(), store,
            wall_clock=clock.wall, monotonic_clock=clock.monotonic, sleep=clock.sleep,
        )
        collector.run(interval_s=INTERVAL_S, duration_s=None,
                      should_stop=lambda: collector.rounds >= 6)
        # three rounds, backoff 1, 2, 4 s while down, then the schedule again
        assert clock.sleeps[:7] == [1.0, 1.0, 1.0, 1.0, 2.0, 4.0, 1.0]
        assert collector.rounds == 6 and engine.calls == 9
        assert len(collector.outages) == 1
        assert collector.outages[0]["gap_s"] == pytest.approx(7.0)
        events = store.events()
        samples = store.samples(interval_s=INTERVAL_S)
        counters = store.counters()
    gap = events[events["action"] == GAP_ACTION]
    assert len(gap) == 1
    assert gap["container_id"].iloc[0] == ""
    assert gap["time"].iloc[0] == T0 + timedelta(seconds=3)
    assert float(gap["attributes"].iloc[0]["gap_s"]) == pytest.approx(7.0)
    assert "connection refused" in gap["attributes"].iloc[0]["error"]
    assert gap["attributes"].iloc[0]["retries"] == "3"
    assert len(counters) == 2 * 6
    # the 8 s interval across the outage is a gap: no rate is made up for it
    assert len(samples) == 2 * 4
    assert (samples["interval_s"] == INTERVAL_S).all()


def test_a_run_with_a_duration_ends_on_time_while_the_engine_is_down(tmp_path: Path):
    clock = FakeClock()
    engine = FlakyEngine([info(0)], fail_from=1, failures=10**6)
    with Store(tmp_path / "s.sqlite") as store:
        collector = Collector(
            engine, CountingReader(), store,
            wall_clock=clock.wall, monotonic_clock=clock.monotonic, sleep=clock.sleep,
        )
        collector.run(interval_s=INTERVAL_S, duration_s=20.0)
        events = store.events()
    assert clock.now_s == pytest.approx(20.0)
    assert max(clock.sleeps) <= collector.backoff_max_s
    assert collector.rounds == 1
    gap = events[events["action"] == GAP_ACTION]
    assert len(gap) == 1 and "still down" in gap["attributes"].iloc[0]["error"]


def test_a_vanished_container_is_skipped_and_the_round_completes():
    clock = FakeClock()
    infos = [info(0), info(1), info(2)]
    engine = FlakyEngine(infos, fail_from=10**6, failures=0)
    sink = Collection()
    collector = Collector(
        engine, CountingReader(gone=[infos[1].id]), sink,
        wall_clock=clock.wall, monotonic_clock=clock.monotonic, sleep=clock.sleep,
    )
    collector.run(interval_s=INTERVAL_S, duration_s=2.0)
    assert sink.rounds == collector.rounds == 3
    assert collector.gone == 3
    assert engine.forgotten == [infos[1].id] * 3  # its cached metadata is dropped each time
    assert {r["container_id"] for r in sink.rows} == {infos[0].id, infos[2].id}
    assert collector.rows_written == len(sink.rows) == 6


def test_no_container_at_all_is_an_error_only_when_required():
    clock = FakeClock()
    empty = FlakyEngine([], fail_from=10**6, failures=0)

    def make() -> Collector:
        return Collector(empty, CountingReader(), Collection(), wall_clock=clock.wall,
                         monotonic_clock=clock.monotonic, sleep=clock.sleep)

    with pytest.raises(NoContainers):
        make().run(interval_s=INTERVAL_S, duration_s=1.0)
    collector = make()
    collector.run(interval_s=INTERVAL_S, duration_s=1.0, require_containers=False)
    assert collector.rounds == 2


def test_rounds_are_batched_and_flushed_at_the_end(tmp_path: Path):
    clock = FakeClock()
    engine = FlakyEngine([info(0)], fail_from=10**6, failures=0)
    path = tmp_path / "s.sqlite"
    store = Store(path, batch_rounds=100)
    try:
        Collector(
            engine, CountingReader(), store,
            wall_clock=clock.wall, monotonic_clock=clock.monotonic, sleep=clock.sleep,
            host_facts={"logical_cpus": 2},
        ).run(interval_s=INTERVAL_S, duration_s=4.0)
        # run() flushed although fewer than batch_rounds rounds were buffered
        with Store(path, create=False) as other:
            assert len(other.counters()) == 5
            facts = other.host_facts()
        assert facts["facts"].iloc[0] == {"logical_cpus": 2}
    finally:
        store.close()


class _SlowEvents(FakeEvents):
    """Blocks a little per window, as the engine does until ``until``."""

    def events(self, since: datetime, until: datetime) -> Iterable[ContainerEvent]:
        time.sleep(0.01)
        return super().events(since, until)


def test_events_are_pumped_deduplicated_and_stale_metadata_dropped(tmp_path: Path):
    clock = FakeClock()
    infos = [info(0)]
    engine = FlakyEngine(infos, fail_from=10**6, failures=0)
    source = _SlowEvents(
        [
            event(0.0, infos[0].id, "start", name="c0"),
            event(0.5, infos[0].id, "oom"),
            event(0.6, infos[0].id, "die", exitCode="137"),
        ]
    )
    def sleep(seconds: float) -> None:  # fake time, plus a little real time for the pump
        clock.sleep(seconds)
        time.sleep(0.05)

    with Store(tmp_path / "s.sqlite") as store:
        collector = Collector(
            engine, CountingReader(), store,
            wall_clock=clock.wall, monotonic_clock=clock.monotonic, sleep=sleep,
            events=source,
        )
        collector.run(interval_s=INTERVAL_S, duration_s=3.0)
        events = store.events()
    assert list(events["action"]) == ["start", "oom", "die"]  # each once, in order
    assert events["attributes"].iloc[2] == {"exitCode": "137"}
    assert infos[0].id in engine.forgotten  # start/die make the cached metadata stale
    assert len(source.windows) > 1


def test_event_pump_stop_catches_up_to_now():
    clock = FakeClock()
    source = _SlowEvents([event(5.0, "a" * 64, "kill", signal="15")])
    pump = EventPump(source, start=T0, wall_clock=clock.wall, window_s=1.0).start()
    time.sleep(0.05)
    assert pump.drain() == []  # the windows asked so far end before t = 5 s
    clock.now_s = 6.0
    events = pump.stop()
    assert [(e.action, e.attributes) for e in events] == [("kill", {"signal": "15"})]


def test_disk_usage_sampler_runs_on_its_schedule_and_skips_the_gone():
    infos = [info(0), info(1)]
    measured: list[str] = []

    def measure(cid: str) -> int:
        measured.append(cid)
        if cid == infos[1].id:
            raise ContainerGone(cid)
        return 4096

    sampler = DiskUsageSampler(measure, every_s=10.0)
    clock = FakeClock()
    sampler.maybe_start(0.0, infos, clock.wall)
    deadline = time.monotonic() + 5
    rows: list = []
    while not rows and time.monotonic() < deadline:
        rows = sampler.poll()
        time.sleep(0.01)
    assert [(cid, size) for _, cid, _, size in rows] == [(infos[0].id, 4096)]
    sampler.maybe_start(5.0, infos, clock.wall)  # not due yet
    assert sampler.close() == [] and len(measured) == 2
    with pytest.raises(InvalidParameter):
        DiskUsageSampler(measure, every_s=0)


class _RemoteClient:
    class api:  # mimics docker.DockerClient.api
        base_url = "http://10.0.0.9:2375"


def test_choose_reader_refuses_cgroup_files_of_a_remote_engine():
    assert choose_reader(_RemoteClient(), [info(0)], source="api").name == "stats-api"
    assert choose_reader(_RemoteClient(), [info(0)], source="auto").name == "stats-api"
    with pytest.raises(InvalidParameter, match="not readable"):
        choose_reader(_RemoteClient(), [info(0)], source="cgroup")
    with pytest.raises(InvalidParameter):
        choose_reader(_RemoteClient(), [], source="fast")


class _EventsApi:
    """Records what DockerEngine asks of ``client.api.events`` and answers recorded events."""

    base_url = "http+docker://localhost"

    def __init__(self, answer: list[dict[str, Any]]) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def events(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append(kwargs)
        return self.answer


class _Client:
    def __init__(self, api: _EventsApi) -> None:
        self.api = api


def test_docker_engine_events_filters_and_conversion():
    raw = [  # as Engine 20.10 sends them (decoded), trimmed
        {"status": "exec_start: sh -c true", "id": "a" * 64, "Type": "container",
         "Action": "exec_start: sh -c true", "Actor": {"ID": "a" * 64, "Attributes": {}},
         "time": 1767225600, "timeNano": 1767225600123456789},
        {"status": "die", "id": "a" * 64, "Type": "container", "Action": "die",
         "Actor": {"ID": "a" * 64, "Attributes": {"exitCode": "137", "name": "web-1",
                                                  "com.example.team": "payments"}},
         "time": 1767225601, "timeNano": 1767225601000001000},
    ]
    api = _EventsApi(raw)
    engine = DockerEngine(_Client(api), filters={"label": ["app=web"], "name": ["web-1"],
                                                 "ancestor": ["nginx"]})
    events = list(engine.events(T0, T0 + timedelta(seconds=2)))
    assert api.calls[0]["filters"] == {
        "type": "container", "label": ["app=web"], "container": ["web-1"], "image": ["nginx"]
    }
    assert api.calls[0]["since"] == f"{int(T0.timestamp())}.000000000"
    assert [(e.action, dict(e.attributes)) for e in events] == [
        ("die", {"exitCode": "137", "name": "web-1"})  # exec_* dropped, labels not copied
    ]
    assert events[0].time == datetime(2026, 1, 1, 0, 0, 1, 1, tzinfo=T0.tzinfo)


# -- listing the running containers only when the event stream says the set changed --------


def _listing_run(relist_s: float | None, events: list, gone: tuple[str, ...] = ()):
    clock = FakeClock()
    infos = [info(0), info(1)]
    engine = FlakyEngine(infos, fail_from=10**6, failures=0)
    reader = CountingReader(gone)

    def sleep(seconds: float) -> None:  # fake time, plus a little real time for the pump
        clock.sleep(seconds)
        time.sleep(0.05)

    collector = Collector(
        engine, reader, Collection(), wall_clock=clock.wall, monotonic_clock=clock.monotonic,
        sleep=sleep, events=_SlowEvents(events), relist_s=relist_s,
    )
    collector.run(interval_s=1.0, duration_s=12.0)
    return collector, engine, reader


def test_without_relist_s_every_round_lists():
    collector, engine, _ = _listing_run(None, [])
    assert collector.rounds == 13 and engine.calls == 13 == collector.listings


def test_with_relist_s_quiet_rounds_reuse_the_listing():
    collector, engine, reader = _listing_run(5.0, [])
    assert collector.rounds == 13
    assert engine.calls == 3  # at 0, 5 and 10 s
    assert reader.reads == {info(0).id: 13, info(1).id: 13}  # every round read both


def test_a_lifecycle_event_makes_the_next_round_list():
    quiet, _, _ = _listing_run(100.0, [])
    assert quiet.listings == 1
    collector, _, _ = _listing_run(100.0, [event(2.0, info(1).id, "start")])
    assert collector.listings >= 2  # the start event brought a listing


def test_a_container_found_gone_is_not_read_again_until_the_next_listing():
    collector, engine, reader = _listing_run(5.0, [], gone=(info(1).id,))
    assert engine.calls == 3
    assert collector.gone == 3  # tried once after each listing, not every round
    assert reader.reads[info(0).id] == 13
