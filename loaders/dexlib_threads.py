"""Java threads on a deterministic scheduler: each Java thread runs on a Python thread, but only the one
holding the baton runs, and the baton moves only where a Java thread blocks (start, wait, sleep, join, a
monitor another thread holds, yield, its end). start() runs the new thread until it ends or blocks, then
its starter goes on, so a program whose threads never block runs as if each ran to completion at
start(). Monitors are real (synchronized blocks and methods, wait/notify/notifyAll with the JVM's
IllegalMonitorStateException); time is virtual: when every live thread is sleeping or waiting with a
timeout, the clock jumps to the earliest deadline. When every live thread waits for ever, the JVM would
hang: here that is one FormatError naming each thread and what it waits for."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cerebro.binread import FormatError
from cerebro.loaders.dexexc import JObject, java_name
from cerebro.loaders.dexlib_lang import JClass, throw

THREAD = "Ljava/lang/Thread;"


class Abort(BaseException):
    """Unwinds a Java thread the run gave up on (the program ended or another thread failed): a
    BaseException, so no Java handler or library `except Exception` stops it."""


@dataclass(eq=False)
class Monitor:
    lock: object  # kept alive: the monitor table is keyed by its id
    owner: JThread | None = None
    count: int = 0
    wait_set: deque = field(default_factory=deque)


@dataclass(eq=False)
class JThread:
    obj: JObject
    number: int
    stack: list = field(default_factory=list)  # its Java frames (the VM's stack while it runs)
    depth: int = 0
    state: str = "runnable"  # runnable, blocked (on a monitor's lock), waiting, sleeping, joining, exiting, done
    on: object = None  # the Monitor or JThread it waits for
    wake_at: int | None = None  # virtual milliseconds, for timed waits
    daemon: bool = False
    python: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.obj.fields.get("<name>")


def _monitor_key(lock) -> object:
    """Class objects are made per use: one monitor per class, as the JVM's one Class object has."""
    return ("class", lock.desc) if isinstance(lock, JClass) else id(lock)


class Scheduler:
    def __init__(self, vm, main: JObject):
        self.vm = vm
        self.cond = threading.Condition()
        self.main = JThread(main, 0, stack=vm.stack)
        self.current = self.main
        self.ready: deque[JThread] = deque()
        self.threads: dict[int, JThread] = {id(main): self.main}
        self.monitors: dict[object, Monitor] = {}
        self.clock = 0
        self.failure: BaseException | None = None

    def record(self, obj: JObject) -> JThread:
        if id(obj) not in self.threads:
            self.threads[id(obj)] = JThread(obj, len(self.threads), state="new")
        return self.threads[id(obj)]

    # ---- handing the baton over ----
    def block(self, me: JThread) -> None:
        """me (the running thread, its state set) gives the baton to the next thread and waits for it back."""
        nxt = self._next()
        if nxt is not me:
            self._hand_to(me, nxt)

    def _next(self) -> JThread:
        if self.ready:
            return self.ready.popleft()
        timed = [t for t in self.threads.values() if t.wake_at is not None]
        if not timed:
            raise FormatError(f"{self.vm.KIND}: deadlock: every thread waits for ever, so the JVM would hang ("
                              + "; ".join(f"{t.name}: {self._waits_for(t)}" for t in self.threads.values()
                                          if t.state not in ("done", "new")) + ")")
        first = min(timed, key=lambda t: (t.wake_at, t.number))
        self.clock = max(self.clock, first.wake_at)
        self.wake(first)
        return self.ready.popleft()

    def _waits_for(self, t: JThread) -> str:
        if t.state == "joining":
            return f"join() of {t.on.name}"
        if t.state == "exiting":
            return "its end, for the other threads to end"
        what = java_name(getattr(t.on.lock, "cls", None) or "Ljava/lang/Object;")
        return f"{'wait() on' if t.state == 'waiting' else 'the lock of'} a {what}"

    def _hand_to(self, me: JThread, nxt: JThread) -> None:
        me.stack, me.depth = self.vm.stack, self.vm.depth
        with self.cond:
            self._give_baton(nxt)
            while self.current is not me:
                self.cond.wait()
        self._resume(me)

    def _give_baton(self, nxt: JThread) -> None:
        """Makes nxt the running thread (starting its Python thread on its first turn); the caller holds cond."""
        self.current = nxt
        if nxt.python is None and nxt is not self.main:
            nxt.python = threading.Thread(target=self._body, args=(nxt,), daemon=True)
            nxt.python.start()
        self.cond.notify_all()

    def _resume(self, me: JThread) -> None:
        """me has the baton: its stack is the VM's (also to unwind on); a failure elsewhere ends it."""
        self.vm.stack, self.vm.depth = me.stack, me.depth
        if self.failure is not None:
            raise (self.failure if me is self.main else Abort())

    def wake(self, t: JThread) -> None:
        if isinstance(t.on, Monitor) and t in t.on.wait_set:
            t.on.wait_set.remove(t)
        t.state, t.wake_at = "runnable", None
        self.ready.append(t)

    def _body(self, t: JThread) -> None:
        with self.cond:
            while self.current is not t:
                self.cond.wait()
        try:
            self._resume(t)
            self.vm.run_java_thread(t.obj)
            t.state = "done"
            for other in self.threads.values():
                if other.state == "joining" and other.on is t or other.state == "exiting" and self._all_ended():
                    self.wake(other)
            nxt = self._next()
        except Abort:
            return
        except BaseException as e:  # noqa: B036 - the budget, System.exit, a deadlock: the main thread reports it
            self.failure, nxt = e, self.main
        t.stack = []
        with self.cond:
            self._give_baton(nxt)

    def _all_ended(self) -> bool:
        return all(t.state in ("done", "new") or t.daemon for t in self.threads.values() if t is not self.main)

    # ---- what Java calls ----
    def start(self, obj: JObject) -> None:
        t = self.record(obj)
        if t.state != "new":
            throw("java.lang.IllegalThreadStateException")
        t.state = "runnable"
        me = self.current
        self.ready.appendleft(me)
        self._hand_to(me, t)

    def main_ends(self) -> None:
        """The JVM waits for every non-daemon thread before it exits."""
        if not self._all_ended():
            self.main.state = "exiting"
            self.block(self.main)

    def shutdown(self) -> None:
        """Unwinds the threads left blocked (daemons, or after a failure), one at a time. A thread still
        running (the main thread was interrupted, e.g. by a time limit) is handed the baton again until it
        reaches a blocking point and unwinds there."""
        self.failure = self.failure or Abort()
        for t in self.threads.values():
            while t.python is not None and t.python.is_alive():
                with self.cond:
                    self.current = t
                    self.cond.notify_all()
                t.python.join(0.01)

    def enter(self, lock) -> None:
        me = self.current
        while True:
            m = self.monitors.setdefault(_monitor_key(lock), Monitor(lock))
            if m.owner is None or m.owner is me:
                m.owner, m.count = me, m.count + 1
                return
            me.state, me.on = "blocked", m
            self.block(me)

    def exit(self, lock) -> None:
        m = self.monitors.get(_monitor_key(lock))
        if m is None or m.owner is not self.current:
            if self.failure is None:
                throw("java.lang.IllegalMonitorStateException", "current thread is not owner")
            return
        m.count -= 1
        if m.count == 0:
            self._release(m)

    def _release(self, m: Monitor) -> None:
        m.owner = None
        for t in self.threads.values():
            if t.state == "blocked" and t.on is m:
                self.wake(t)
        if not m.wait_set:
            del self.monitors[_monitor_key(m.lock)]

    def _owned(self, lock) -> Monitor:
        m = self.monitors.get(_monitor_key(lock))
        if m is None or m.owner is not self.current:
            throw("java.lang.IllegalMonitorStateException", "current thread is not owner")
        return m

    def wait(self, lock, ms: int = 0) -> None:
        m = self._owned(lock)
        if ms < 0:
            throw("java.lang.IllegalArgumentException", "timeout value is negative")
        me, count = self.current, m.count
        m.count = 0
        m.wait_set.append(me)
        self._release(m)
        me.state, me.on, me.wake_at = "waiting", m, (self.clock + ms if ms else None)
        self.block(me)
        self.enter(lock)
        self.monitors[_monitor_key(lock)].count = count

    def notify(self, lock, every: bool) -> None:
        m = self._owned(lock)
        while m.wait_set:
            self.wake(m.wait_set[0])
            if not every:
                return

    def sleep(self, ms: int) -> None:
        if ms < 0:
            throw("java.lang.IllegalArgumentException", "timeout value is negative")
        me = self.current
        me.state, me.on, me.wake_at = "sleeping", None, self.clock + ms
        self.block(me)

    def yield_(self) -> None:
        if self.ready:
            self.ready.append(self.current)
            self.block(self.current)

    def join(self, obj: JObject, ms: int = 0) -> None:
        if ms < 0:
            throw("java.lang.IllegalArgumentException", "timeout value is negative")
        t = self.record(obj)
        if t.state in ("new", "done"):
            return
        me = self.current
        me.state, me.on, me.wake_at = "joining", t, (self.clock + ms if ms else None)
        self.block(me)


def _thread_init(vm, thread: JObject, target=None, name=None):
    if isinstance(target, str):
        target, name = None, target
    thread.fields["<target>"] = target
    thread.fields["<name>"] = name if name is not None else f"Thread-{vm.next_thread_number()}"


def _set_daemon(vm, thread: JObject, on: int) -> None:
    t = vm.scheduler.record(thread)
    if t.state != "new":
        throw("java.lang.IllegalThreadStateException")
    t.daemon = bool(on)


NATIVES: dict[str, Callable] = {
    f"{THREAD}-><init>()V": _thread_init,
    f"{THREAD}-><init>(Ljava/lang/Runnable;)V": _thread_init,
    f"{THREAD}-><init>(Ljava/lang/String;)V": _thread_init,
    f"{THREAD}-><init>(Ljava/lang/Runnable;Ljava/lang/String;)V": _thread_init,
    f"{THREAD}->start()V": lambda vm, t: vm.scheduler.start(t),
    f"{THREAD}->join()V": lambda vm, t: vm.scheduler.join(t),
    f"{THREAD}->join(J)V": lambda vm, t, ms: vm.scheduler.join(t, ms),
    f"{THREAD}->run()V": lambda vm, t: vm.run_runnable(t.fields.get("<target>")),
    f"{THREAD}->getName()Ljava/lang/String;": lambda vm, t: t.fields.get("<name>"),
    f"{THREAD}->setDaemon(Z)V": _set_daemon,
    f"{THREAD}->isDaemon()Z": lambda vm, t: int(vm.scheduler.record(t).daemon),
    f"{THREAD}->isAlive()Z": lambda vm, t: int(vm.scheduler.record(t).state not in ("new", "done")),
    f"{THREAD}->currentThread()L{THREAD[1:]}": lambda vm: vm.scheduler.current.obj,
    f"{THREAD}->sleep(J)V": lambda vm, ms: vm.scheduler.sleep(ms),
    f"{THREAD}->yield()V": lambda vm: vm.scheduler.yield_(),
}
# java.lang.Object's, for every object (dexnative.OBJECT_METHODS)
OBJECT_METHODS: dict[str, Callable] = {
    "wait()V": lambda vm, o: vm.scheduler.wait(o),
    "wait(J)V": lambda vm, o, ms: vm.scheduler.wait(o, ms),
    "notify()V": lambda vm, o: vm.scheduler.notify(o, False),
    "notifyAll()V": lambda vm, o: vm.scheduler.notify(o, True),
}
METHODS: dict[type, dict[str, Callable]] = {}
NATIVE_CLASSES: dict[str, Callable] = {}
