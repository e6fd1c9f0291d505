"""java.util additions the library lacked for everyday programs: ArrayDeque and the Deque methods
(also LinkedList's), PriorityQueue with OpenJDK's own sift-up/sift-down (so iteration and toString
show the JVM's heap order), Arrays.binarySearch (OpenJDK's loop: the same index among equal
elements), Arrays.fill of every kind and range, and Integer/Long bit operations (Arrays.deepToString is
dexlib_util's: it reads the arrays' element types, dexvalues.JArray)."""

from __future__ import annotations

from collections.abc import Callable

from cerebro.loaders.dexlib_lang import throw
from cerebro.loaders.dexlib_util import JIterator, JList, LinkedList, iterator
from cerebro.loaders.dexvalues import f32, f64, i32, i64

OBJ = "Ljava/lang/Object;"
COMPARATOR = "Ljava/util/Comparator;"
PQ = "Ljava/util/PriorityQueue;"


class ArrayDeque(JList):
    java_class = "Ljava/util/ArrayDeque;"


def _need(lst: list, at: int):
    return lst[at] if lst else throw("java.util.NoSuchElementException")


def _grow(vm, lst: list) -> None:
    vm.allocate(8 * (len(lst) + 1))


DEQUE_METHODS: dict[str, Callable] = {
    f"poll(){OBJ}": lambda vm, d: d.pop(0) if d else None, f"pollFirst(){OBJ}": lambda vm, d: d.pop(0) if d else None,
    f"pollLast(){OBJ}": lambda vm, d: d.pop() if d else None,
    f"peek(){OBJ}": lambda vm, d: d[0] if d else None, f"peekFirst(){OBJ}": lambda vm, d: d[0] if d else None,
    f"peekLast(){OBJ}": lambda vm, d: d[-1] if d else None,
    f"element(){OBJ}": lambda vm, d: _need(d, 0), f"getFirst(){OBJ}": lambda vm, d: _need(d, 0),
    f"getLast(){OBJ}": lambda vm, d: _need(d, -1),
    f"pop(){OBJ}": lambda vm, d: (_need(d, 0), d.pop(0))[1],
    f"push({OBJ})V": lambda vm, d, v: (_grow(vm, d), d.insert(0, v))[1],
    f"offer({OBJ})Z": lambda vm, d, v: (_grow(vm, d), d.append(v), 1)[2],
    f"offerLast({OBJ})Z": lambda vm, d, v: (_grow(vm, d), d.append(v), 1)[2],
    f"offerFirst({OBJ})Z": lambda vm, d, v: (_grow(vm, d), d.insert(0, v), 1)[2],
    "descendingIterator()Ljava/util/Iterator;": lambda vm, d: JIterator(list(reversed(d))),
}


class PriorityQueue(list):
    """The heap array itself (so the library iterates it in the JVM's order), with its comparator."""
    java_class = PQ

    def __init__(self):
        super().__init__()
        self.comparator = None

    def java_string(self, vm) -> str:
        return "[" + ", ".join(vm.stringify(v) for v in self) + "]"

    def sift_up(self, vm, k: int, x) -> None:
        while k > 0:
            parent = (k - 1) >> 1
            if vm.compare(x, self[parent], self.comparator) >= 0:
                break
            self[k] = self[parent]
            k = parent
        self[k] = x

    def sift_down(self, vm, k: int, x) -> None:
        n = len(self)
        while k < n >> 1:
            child = 2 * k + 1
            if child + 1 < n and vm.compare(self[child], self[child + 1], self.comparator) > 0:
                child += 1
            if vm.compare(x, self[child], self.comparator) <= 0:
                break
            self[k] = self[child]
            k = child
        self[k] = x

    def offer(self, vm, x) -> int:
        if x is None:
            throw("java.lang.NullPointerException")
        vm.allocate(8 * (len(self) + 1))
        self.append(x)
        self.sift_up(vm, len(self) - 1, x)
        return 1

    def poll(self, vm):
        if not self:
            return None
        result, last = self[0], self.pop()
        if self:
            self.sift_down(vm, 0, last)
        return result

    def remove_at(self, vm, i: int) -> None:
        moved = self.pop()
        if i < len(self):
            self.sift_down(vm, i, moved)
            if self[i] is moved:
                self.sift_up(vm, i, moved)


def _pq_init(vm, pq: PriorityQueue, *args) -> None:
    """(), (int), (Comparator), (int, Comparator), (Collection): a collection is heapified as OpenJDK does."""
    source = next((a for a in args if isinstance(a, list)), None)
    pq.comparator = next((a for a in args if a is not None and not isinstance(a, int | list)), None)
    if isinstance(source, PriorityQueue):
        pq.comparator = source.comparator
    if source is not None:
        pq.extend(iterator(vm, source).items)
        for i in range((len(pq) >> 1) - 1, -1, -1):
            pq.sift_down(vm, i, pq[i])


def _pq_remove(vm, pq: PriorityQueue, o) -> int:
    for i, v in enumerate(pq):
        if vm.equals(o, v):
            pq.remove_at(vm, i)
            return 1
    return 0


PQ_METHODS: dict[str, Callable] = {
    f"add({OBJ})Z": lambda vm, pq, v: pq.offer(vm, v), f"offer({OBJ})Z": lambda vm, pq, v: pq.offer(vm, v),
    f"poll(){OBJ}": lambda vm, pq: pq.poll(vm), f"peek(){OBJ}": lambda vm, pq: pq[0] if pq else None,
    f"remove(){OBJ}": lambda vm, pq: pq.poll(vm) if pq else throw("java.util.NoSuchElementException"),
    f"element(){OBJ}": lambda vm, pq: _need(pq, 0),
    f"remove({OBJ})Z": _pq_remove,
    f"contains({OBJ})Z": lambda vm, pq, o: int(any(vm.equals(o, v) for v in pq)),
    "size()I": lambda vm, pq: len(pq), "isEmpty()Z": lambda vm, pq: int(not pq), "clear()V": lambda vm, pq: pq.clear(),
    "iterator()Ljava/util/Iterator;": lambda vm, pq: JIterator(list(pq)),
    "toString()Ljava/lang/String;": lambda vm, pq: pq.java_string(vm),
    f"toArray()[{OBJ}": lambda vm, pq: list(pq),
    f"comparator(){COMPARATOR}": lambda vm, pq: pq.comparator,
}


def _binary_search(kind: str):
    """OpenJDK's binarySearch0 (on [from, to) when given): the index, or -(insertion point) - 1."""
    def key(v):
        return f64(v) if kind == "D" else f32(v) if kind == "F" else v

    def search(vm, array, *rest):
        lo, hi, target = (rest[0], rest[1] - 1, rest[2]) if len(rest) >= 3 else (0, len(array) - 1, rest[0])
        comparator = rest[-1] if kind == "L" and len(rest) in (2, 4) else None
        while lo <= hi:
            mid = (lo + hi) >> 1
            order = (vm.compare(array[mid], target, comparator) if kind == "L"
                     else (key(array[mid]) > key(target)) - (key(array[mid]) < key(target)))
            if order < 0:
                lo = mid + 1
            elif order > 0:
                hi = mid - 1
            else:
                return mid
        return -(lo + 1)
    return search


def _fill_range(vm, array, start, end, value) -> None:
    if start > end:
        throw("java.lang.IllegalArgumentException", f"fromIndex({start}) > toIndex({end})")
    if start < 0 or end > len(array):
        throw("java.lang.ArrayIndexOutOfBoundsException",
              f"Array index out of range: {start if start < 0 else end}")
    array[start:end] = [value] * (end - start)


def _bits(width: int) -> dict[str, Callable]:
    mask, wrap = (1 << width) - 1, i32 if width == 32 else i64
    return {
        "numberOfTrailingZeros": lambda vm, v: width if not v & mask else ((v & mask) & -(v & mask)).bit_length() - 1,
        "numberOfLeadingZeros": lambda vm, v: width - (v & mask).bit_length(),
        "highestOneBit": lambda vm, v: wrap(1 << ((v & mask).bit_length() - 1)) if v & mask else 0,
        "lowestOneBit": lambda vm, v: wrap(v & -v),
        "reverse": lambda vm, v: wrap(int(format(v & mask, f"0{width}b")[::-1], 2)),
        "signum": lambda vm, v: (v > 0) - (v < 0),
        "rotateLeft": lambda vm, v, n: wrap(((v & mask) << (n % width) | (v & mask) >> (width - n % width)) & mask),
        "rotateRight": lambda vm, v, n: wrap(((v & mask) >> (n % width) | (v & mask) << (width - n % width)) & mask),
    }


NATIVES: dict[str, Callable] = {
    **{f"{ArrayDeque.java_class}-><init>{sig}": (lambda vm, d, arg=None: d.extend(iterator(vm, arg).items)
                                                 if arg is not None and not isinstance(arg, int) else None)
       for sig in ("()V", "(I)V", "(Ljava/util/Collection;)V")},
    **{f"{PQ}-><init>{sig}": _pq_init for sig in ("()V", "(I)V", f"({COMPARATOR})V", f"(I{COMPARATOR})V",
                                                   "(Ljava/util/Collection;)V", f"({PQ})V")},
    **{f"Ljava/util/Arrays;->binarySearch([{k}{k if k != 'L' else OBJ}){'I'}": _binary_search(k) for k in "IJCSBDF"},
    **{f"Ljava/util/Arrays;->binarySearch([{k}II{k}){'I'}": _binary_search(k) for k in "IJCSBDF"},
    f"Ljava/util/Arrays;->binarySearch([{OBJ}{OBJ})I": _binary_search("L"),
    f"Ljava/util/Arrays;->binarySearch([{OBJ}{OBJ}{COMPARATOR})I": _binary_search("L"),
    **{f"Ljava/util/Arrays;->fill([{k}{k})V": lambda vm, arr, v: arr.__setitem__(slice(None), [v] * len(arr))
       for k in "JZCSBDF"},  # (int[] and Object[]: dexlib_util)
    **{f"Ljava/util/Arrays;->fill([{k}II{k})V": _fill_range for k in ("I", "J", "Z", "C", "S", "B", "D", "F", OBJ)},
}
for _width, _box, _k in ((32, "Integer", "I"), (64, "Long", "J")):
    for _name, _fn in _bits(_width).items():
        _ret = "I" if _name.startswith("numberOf") or _name == "signum" else _k
        _params = f"{_k}I" if _name.startswith("rotate") else _k
        NATIVES[f"Ljava/lang/{_box};->{_name}({_params}){_ret}"] = _fn
METHODS: dict[type, dict[str, Callable]] = {ArrayDeque: DEQUE_METHODS, LinkedList: DEQUE_METHODS,
                                            PriorityQueue: PQ_METHODS}
NATIVE_CLASSES: dict[str, Callable] = {ArrayDeque.java_class: ArrayDeque, PQ: PriorityQueue}
