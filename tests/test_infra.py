"""Hosts (processor sharing) and the metadata DB's connection pool, checked by hand."""
import simpy

from sim.airflow.metadata_db import MetadataDB
from sim.infra.host import Host


def finish_times(cores, jobs):
    env = simpy.Environment()
    host = Host(env, "h", cores)
    done = {}

    def job(name, start, work):
        yield env.timeout(start)
        yield host.work(work)
        done[name] = env.now
    for name, (start, work) in enumerate(jobs):
        env.process(job(name, start, work))
    env.run()
    return done, host


def test_processor_sharing_by_hand():
    # three 4 s jobs on 2 cores progress at 2/3; a 1 s job arriving at t=1 slows all to 1/2
    done, host = finish_times(2, [(0, 4), (0, 4), (0, 4), (1, 1)])
    assert abs(done[3] - 3.0) < 1e-9
    assert all(abs(done[i] - 6.5) < 1e-9 for i in range(3))
    assert abs(host.busy_core_seconds - 13.0) < 1e-9       # all the work, never more than 2 cores


def test_more_processes_than_cores_is_not_faster():
    one, _ = finish_times(2, [(0, 10)] * 2)
    many, _ = finish_times(2, [(0, 5)] * 4)       # the same 20 s of work split four ways
    assert max(one.values()) == max(many.values()) == 10.0


def test_unlimited_host_is_a_delay():
    done, _ = finish_times(None, [(0, 3)] * 5)
    assert set(done.values()) == {3.0}


def test_callback_jobs():
    env = simpy.Environment()
    host = Host(env, "h", 1)
    seen = []
    host.run(2.0, lambda _: seen.append(env.now))
    host.run(2.0, lambda _: seen.append(env.now))
    env.run()
    assert seen == [4.0, 4.0]


def test_work_nobody_waits_for_only_slows_the_rest():
    env = simpy.Environment()
    host = Host(env, "h", 1)
    seen = []
    host.burn(2.0)                         # shares the core: the waited-for job takes twice as long
    host.run(2.0, lambda _: seen.append(env.now))
    env.run()
    assert seen == [4.0] and abs(host.busy_core_seconds - 4.0) < 1e-9
    two = Host(env, "two", 2)
    two.burn(2.0)                          # a second core free: no slower
    two.run(1.0, lambda _: seen.append(env.now))
    env.run()
    assert seen[-1] == 5.0
    free = Host(env, "free", None)
    free.burn(3.0)                         # unlimited: counted, nothing scheduled
    assert free.busy_core_seconds == 3.0 and not env._queue


def test_db_fifo_connection_pool():
    env = simpy.Environment()
    db = MetadataDB(env, query_time=1.0, connections=2)
    assert db.book(1) == 1.0
    assert db.book(1) == 1.0
    assert db.book(1) == 2.0          # both connections busy until t=1
    assert db.book(3) == 4.0          # waits for t=1, then three queries back to back... on free ones
    assert db.queries == 6 and db.wait_seconds > 0


def test_a_database_sharing_a_loaded_host_is_slower_and_loads_it():
    """A single-machine install (overheads.metadata_db_on_scheduler_host): a query is CPU work on
    the host, at the rate a job arriving now gets (Host.stretch), and slows what else runs there."""
    env = simpy.Environment()
    host = Host(env, "h", 2)
    db = MetadataDB(env, query_time=0.1, connections=4)
    db.host = host
    assert host.stretch() == 1.0
    assert db.book(1) == 0.1                  # an idle host: as a database of its own
    env.run(until=1.0)
    seen = []
    for _ in range(3):                        # three 10 s jobs on the 2 cores
        host.run(10.0, lambda _: seen.append(env.now))
    assert host.stretch() == 2.0              # a fourth would get 2/4 of a core
    assert abs(db.book(2) - 0.4) < 1e-12      # two queries at half speed
    env.run()
    # the three jobs shared the 2 cores with the queries' 0.2 s (and the first query's 0.1)
    assert abs(host.busy_core_seconds - 30.3) < 1e-9
    assert [round(t, 9) for t in seen] == [16.1] * 3        # 16.0 without the queries
    alone = MetadataDB(env, query_time=0.1, connections=4)
    for _ in range(3):
        host.run(10.0, None)
    assert alone.book(2) == 0.2               # a database on a host of its own is not slowed


def test_db_zero_time_is_free():
    env = simpy.Environment()
    db = MetadataDB(env, query_time=0.0, connections=1)
    assert db.book(10) == 0.0


def test_two_jobs_back_to_back_end_when_their_sum_would():
    """Why the scheduler runs consecutive parts of its loop as one job: under processor sharing,
    a job of a seconds followed at once by one of b ends when one job of a + b would, whatever
    else arrives and leaves meanwhile (and the others end at the same times too)."""
    import random
    for seed in range(30):
        rng = random.Random(seed)
        cores = rng.choice([1, 2, 3.5])
        others = [(rng.uniform(0, 5), rng.uniform(0.1, 4)) for _ in range(rng.randint(1, 8))]
        a, b = rng.uniform(0.1, 3), rng.uniform(0.1, 3)
        ends = []
        for split in (True, False):
            env = simpy.Environment()
            host = Host(env, "h", cores)
            seen = {}

            def chained(split=split, host=host, env=env, seen=seen):
                yield env.timeout(1.0)
                if split:
                    yield host.work(a)
                    yield host.work(b)
                else:
                    yield host.work(a + b)
                seen["me"] = env.now

            def other(i, start, work, host=host, env=env, seen=seen):
                yield env.timeout(start)
                yield host.work(work)
                seen[i] = env.now
            env.process(chained())
            for i, (start, work) in enumerate(others):
                env.process(other(i, start, work))
            env.run()
            ends.append(seen)
        assert ends[0].keys() == ends[1].keys()
        for k in ends[0]:
            assert abs(ends[0][k] - ends[1][k]) < 1e-9, (seed, k)


def test_redis_broker_forgets_a_settled_message_before_its_visibility_timeout():
    """A Redis delivery is watched for visibility_timeout (24 h by default); once its task is
    acknowledged the broker must not keep the message (and its task instance) alive that long."""
    from sim.infra.broker import Broker, Message

    class Core:
        def event(self, *a):
            pass

    class Worker:
        queues = ["default"]

        def __init__(self):
            self.got = []

        def room(self):
            return 1

        def hold(self, msg):
            pass

        def receive(self, msg):
            self.got.append(msg)

    env = simpy.Environment()
    broker = Broker(env, Core(), "redis", 0.0, 100.0, acks_late=True)
    w = Worker()
    broker.subscribe(w)
    settled, unsettled = Message(1, "ti-a", 1, "default", 0.0), Message(2, "ti-b", 1, "default", 0.0)
    broker.publish(settled)
    broker.publish(unsettled)
    assert [m.task_id for m in w.got] == [1, 2]
    broker.ack(settled)
    watched = [entry[1] for entry in broker._visibility]
    assert watched == [None, unsettled]          # the settled one is no longer referenced
    env.run(until=150.0)
    assert broker.redeliveries == 1 and w.got[-1].task_id == 2 and w.got[-1].redelivered
