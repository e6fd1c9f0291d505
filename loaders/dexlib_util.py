"""java.util for the dex interpreter: ArrayList (and CopyOnWriteArrayList, LinkedList), HashMap,
LinkedHashMap, TreeMap, HashSet, LinkedHashSet, TreeSet, their iterators and entries, Collections, Arrays.

HashMap/HashSet iterate as OpenJDK's do: by bucket (the key's hashCode spread as `h ^ h >>> 16`, masked
by a table that doubles past 3/4 full), in insertion order within a bucket. Keys are compared by Java
equality for strings and boxes and by their own equals()/hashCode() for program objects that define
them (identity otherwise)."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

from cerebro.loaders.dexlib_lang import JBox, box_compare, compare_strings, string_hash, throw
from cerebro.loaders.dexvalues import JArray, bits64, copy_array, f32, f64, i32, i64

OBJ = "Ljava/lang/Object;"


class JList(list):
    java_class = "Ljava/util/ArrayList;"

    def java_string(self, vm) -> str:
        return "[" + ", ".join("(this Collection)" if v is self else vm.stringify(v) for v in self) + "]"


class CopyOnWriteList(JList):
    java_class = "Ljava/util/concurrent/CopyOnWriteArrayList;"


class LinkedList(JList):
    java_class = "Ljava/util/LinkedList;"


class JIterator:
    def __init__(self, items: list, owner=None):
        self.items, self.at, self.owner = items, 0, owner


class JEntry:
    def __init__(self, owner, key):
        self.owner, self.key = owner, key

    def java_string(self, vm) -> str:
        return f"{vm.stringify(self.key)}={vm.stringify(self.owner.data[vm.key(self.key)])}"


class JMap:
    """HashMap: data keeps insertion order; iteration is by bucket (see the module's docstring)."""
    java_class = "Ljava/util/HashMap;"

    def __init__(self):
        self.data: dict = {}
        self.capacity = 16

    def keys(self, vm) -> list:
        """The keys in iteration order (data holds them wrapped when the program defines their equality)."""
        return [k.obj if isinstance(k, JavaKey) else k for k in self.ordered(vm)]

    def ordered(self, vm) -> list:
        mask = self.capacity - 1
        return sorted(self.data, key=lambda k: spread(java_hash(vm, k)) & mask)

    def put(self, vm, key, value):
        key = vm.key(key)
        old = self.data.get(key)
        self.data[key] = value
        while len(self.data) > self.capacity * 3 // 4:
            self.capacity *= 2
        return old

    def java_string(self, vm) -> str:
        return "{" + ", ".join(f"{vm.stringify(k)}={vm.stringify(self.data[vm.key(k)])}" for k in self.keys(vm)) + "}"


class LinkedMap(JMap):
    java_class = "Ljava/util/LinkedHashMap;"

    def ordered(self, vm) -> list:
        return list(self.data)


class TreeMap(JMap):
    java_class = "Ljava/util/TreeMap;"
    comparator = None

    def ordered(self, vm) -> list:
        return sorted(self.data, key=functools.cmp_to_key(lambda a, b: vm.compare(unwrap(a), unwrap(b),
                                                                                 self.comparator)))


class JSet:
    """HashSet (LinkedHashSet, TreeSet): a map whose values are unused, as OpenJDK builds it."""
    java_class = "Ljava/util/HashSet;"
    map_type: type = JMap

    def __init__(self):
        self.map = self.map_type()

    def java_string(self, vm) -> str:
        return "[" + ", ".join(vm.stringify(k) for k in self.map.keys(vm)) + "]"


class LinkedSet(JSet):
    java_class = "Ljava/util/LinkedHashSet;"
    map_type = LinkedMap


class TreeSet(JSet):
    java_class = "Ljava/util/TreeSet;"
    map_type = TreeMap


class JavaKey:
    """A program object as a map key: hashed and compared by its own hashCode() and equals()."""
    __slots__ = ("vm", "obj", "hash")

    def __init__(self, vm, obj):
        self.vm, self.obj, self.hash = vm, obj, vm.hash_code(obj)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other) -> bool:
        return isinstance(other, JavaKey) and (self.obj is other.obj or self.vm.equals(self.obj, other.obj))


def unwrap(key):
    return key.obj if isinstance(key, JavaKey) else key


def spread(h: int) -> int:
    h &= 0xFFFFFFFF
    return h ^ (h >> 16)


def java_hash(vm, value) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return string_hash(value)
    if isinstance(value, JBox):
        return vm.call_native_method(value, "hashCode()I")
    if isinstance(value, JavaKey):
        return value.hash
    return vm.hash_code(value)


def natural_compare(vm, a, b) -> int:
    if isinstance(a, str) and isinstance(b, str):
        return compare_strings(a, b)
    if isinstance(a, JBox) and isinstance(b, JBox):
        return box_compare(a, b)
    if a is None or b is None:
        throw("java.lang.NullPointerException")
    return vm.call_compare_to(a, b)


NATIVES: dict[str, Callable] = {}
METHODS: dict[type, dict[str, Callable]] = {JList: {}, CopyOnWriteList: {}, JIterator: {}, JMap: {}, TreeMap: {},
                                            JSet: {}, JEntry: {}}


def _index(lst: list, i: int, end: bool = False) -> int:
    if not 0 <= i < len(lst) + end:
        throw("java.lang.IndexOutOfBoundsException", f"Index {i} out of bounds for length {len(lst)}")
    return i


def _grow(vm, n: int = 1) -> None:
    vm.allocate(16 * n + 8)


def _list_remove_at(vm, lst, i):
    return lst.pop(_index(lst, i))


def _list_index(vm, lst, o) -> int:
    """indexOf: the first element equal to o by Java's equals()."""
    return next((i for i, v in enumerate(lst) if v is o or (v is not None and vm.equals(o, v))), -1) \
        if o is not None else next((i for i, v in enumerate(lst) if v is None), -1)


def _list_remove_object(vm, lst, o):
    i = _list_index(vm, lst, o)
    if i >= 0:
        del lst[i]
    return int(i >= 0)


def _next(vm, it: JIterator):
    if it.at >= len(it.items):
        throw("java.util.NoSuchElementException")
    if it.owner is not None and isinstance(it.owner, JList) and not isinstance(it.owner, CopyOnWriteList) \
            and it.owner != it.items:
        throw("java.util.ConcurrentModificationException")
    it.at += 1
    return it.items[it.at - 1]


def _iter_remove(vm, it: JIterator):
    key = it.items[it.at - 1]
    if isinstance(it.owner, JList) and not isinstance(it.owner, CopyOnWriteList):
        del it.owner[it.at - 1 - (len(it.items) - len(it.owner))]
        it.items = list(it.owner)
        it.at -= 1
    elif isinstance(it.owner, JMap):
        del it.owner.data[vm.key(key.key if isinstance(key, JEntry) else key)]
    elif isinstance(it.owner, JSet):
        del it.owner.map.data[vm.key(key)]
    else:
        throw("java.lang.UnsupportedOperationException", "remove")


def iterator(vm, collection) -> JIterator:
    """A snapshot iterator: CopyOnWriteArrayList's is one; an ArrayList's checks for changes at next()."""
    if isinstance(collection, JList):
        return JIterator(list(collection), collection)
    if isinstance(collection, JSet):
        return JIterator(collection.map.keys(vm), collection)
    if isinstance(collection, list):
        return JIterator(list(collection))
    throw("java.lang.UnsupportedOperationException", f"iterator of {type(collection).__name__}")


def _add_all(vm, lst, other):
    items = list(vm.iterate(other))
    _grow(vm, len(items))
    lst.extend(items)
    return int(bool(items))


def _sort_list(vm, lst, comparator=None):
    lst[:] = sorted(lst, key=functools.cmp_to_key(lambda a, b: vm.compare(a, b, comparator)))


LIST_METHODS: dict[str, Callable] = {
    f"add({OBJ})Z": lambda vm, lst, v: (_grow(vm), lst.append(v), 1)[2],
    f"add(I{OBJ})V": lambda vm, lst, i, v: (_grow(vm), lst.insert(_index(lst, i, True), v))[1],
    f"get(I){OBJ}": lambda vm, lst, i: lst[_index(lst, i)],
    f"set(I{OBJ}){OBJ}": lambda vm, lst, i, v: (lst[_index(lst, i)], lst.__setitem__(i, v))[0],
    f"remove(I){OBJ}": _list_remove_at, f"remove({OBJ})Z": _list_remove_object,
    "size()I": lambda vm, lst: len(lst), "isEmpty()Z": lambda vm, lst: int(not lst),
    f"contains({OBJ})Z": lambda vm, lst, v: int(_list_index(vm, lst, v) >= 0),
    f"indexOf({OBJ})I": _list_index,
    f"lastIndexOf({OBJ})I": lambda vm, lst, v: len(lst) - 1 - lst[::-1].index(v) if v in lst else -1,
    "clear()V": lambda vm, lst: lst.clear(),
    "iterator()Ljava/util/Iterator;": iterator,
    "addAll(Ljava/util/Collection;)Z": _add_all,
    "toString()Ljava/lang/String;": lambda vm, lst: lst.java_string(vm),
    f"equals({OBJ})Z": lambda vm, lst, o: int(isinstance(o, JList) and list(lst) == list(o)),
    "sort(Ljava/util/Comparator;)V": _sort_list,
    "forEach(Ljava/util/function/Consumer;)V": lambda vm, lst, fn: [vm.call_interface(fn, "accept", v)
                                                                      for v in list(lst)] and None,
    f"toArray()[{OBJ}": lambda vm, lst: list(lst),
    f"toArray([{OBJ})[{OBJ}": lambda vm, lst, a: list(lst),
    "addFirst(Ljava/lang/Object;)V": lambda vm, lst, v: lst.insert(0, v),
    "addLast(Ljava/lang/Object;)V": lambda vm, lst, v: lst.append(v),
    "removeFirst()Ljava/lang/Object;": lambda vm, lst: lst.pop(0) if lst else throw("java.util.NoSuchElementException"),
    "removeLast()Ljava/lang/Object;": lambda vm, lst: lst.pop() if lst else throw("java.util.NoSuchElementException"),
    "hashCode()I": lambda vm, lst: functools.reduce(lambda h, v: i32(31 * h + java_hash(vm, v)), lst, 1),
}
METHODS[JList].update(LIST_METHODS)
METHODS[JIterator].update({
    "hasNext()Z": lambda vm, it: int(it.at < len(it.items)), f"next(){OBJ}": _next, "remove()V": _iter_remove})
MAP_METHODS: dict[str, Callable] = {
    f"put({OBJ}{OBJ}){OBJ}": lambda vm, m, k, v: (_grow(vm), m.put(vm, k, v))[1],
    f"get({OBJ}){OBJ}": lambda vm, m, k: m.data.get(vm.key(k)),
    f"getOrDefault({OBJ}{OBJ}){OBJ}": lambda vm, m, k, d: m.data.get(vm.key(k), d),
    f"containsKey({OBJ})Z": lambda vm, m, k: int(vm.key(k) in m.data),
    f"containsValue({OBJ})Z": lambda vm, m, v: int(v in m.data.values()),
    f"remove({OBJ}){OBJ}": lambda vm, m, k: m.data.pop(vm.key(k), None),
    f"putIfAbsent({OBJ}{OBJ}){OBJ}": lambda vm, m, k, v: m.data[vm.key(k)] if vm.key(k) in m.data else m.put(vm, k, v),
    "size()I": lambda vm, m: len(m.data), "isEmpty()Z": lambda vm, m: int(not m.data),
    "clear()V": lambda vm, m: m.data.clear(),
    "keySet()Ljava/util/Set;": lambda vm, m: _view(vm, m, m.keys(vm)),
    "values()Ljava/util/Collection;": lambda vm, m: JList(m.data[vm.key(k)] for k in m.keys(vm)),
    "entrySet()Ljava/util/Set;": lambda vm, m: _view(vm, m, [JEntry(m, k) for k in m.keys(vm)]),
    "toString()Ljava/lang/String;": lambda vm, m: m.java_string(vm),
    "putAll(Ljava/util/Map;)V": lambda vm, m, o: [m.put(vm, k, o.data[vm.key(k)]) for k in o.keys(vm)] and None,
    "merge(Ljava/lang/Object;Ljava/lang/Object;Ljava/util/function/BiFunction;)Ljava/lang/Object;":
        lambda vm, m, k, v, fn: m.put(vm, k, v if vm.key(k) not in m.data else
                                      vm.call_interface(fn, "apply", m.data[vm.key(k)], v)) or m.data[vm.key(k)],
    "firstKey()Ljava/lang/Object;": lambda vm, m: (m.keys(vm) or throw("java.util.NoSuchElementException"))[0],
    "lastKey()Ljava/lang/Object;": lambda vm, m: (m.keys(vm) or throw("java.util.NoSuchElementException"))[-1],
}
METHODS[JMap].update(MAP_METHODS)


def _view(vm, owner, items: list) -> JSet:
    """keySet()/entrySet(): a set holding the map's current keys or entries, in its order; removing
    through its iterator removes from the map."""
    view = LinkedSet()
    for item in items:
        view.map.data[vm.key(item)] = None
    view.owner = owner
    return view


METHODS[JEntry].update({
    f"getKey(){OBJ}": lambda vm, e: e.key, f"getValue(){OBJ}": lambda vm, e: e.owner.data[vm.key(e.key)],
    f"setValue({OBJ}){OBJ}": lambda vm, e, v: e.owner.put(vm, e.key, v),
    "toString()Ljava/lang/String;": lambda vm, e: e.java_string(vm)})


def _set_iterator(vm, s):
    owner = getattr(s, "owner", None)
    it = JIterator(s.map.keys(vm), owner or s)
    return it


SET_METHODS: dict[str, Callable] = {
    f"add({OBJ})Z": lambda vm, s, v: 0 if vm.key(v) in s.map.data else (_grow(vm), s.map.put(vm, v, None), 1)[2],
    f"contains({OBJ})Z": lambda vm, s, v: int(vm.key(v) in s.map.data),
    f"remove({OBJ})Z": lambda vm, s, v: int(s.map.data.pop(vm.key(v), 0) is None),
    "size()I": lambda vm, s: len(s.map.data), "isEmpty()Z": lambda vm, s: int(not s.map.data),
    "clear()V": lambda vm, s: s.map.data.clear(),
    "iterator()Ljava/util/Iterator;": _set_iterator,
    "addAll(Ljava/util/Collection;)Z": lambda vm, s, o: int(sum(SET_METHODS[f"add({OBJ})Z"](vm, s, v)
                                                                for v in list(vm.iterate(o))) > 0),
    "toString()Ljava/lang/String;": lambda vm, s: s.java_string(vm),
}
METHODS[JSet].update(SET_METHODS)


def _constructor(pytype: type):
    def init(vm, obj, arg=None):
        if isinstance(arg, JMap):
            for k in arg.keys(vm):
                obj.put(vm, k, arg.data[vm.key(k)])
        elif isinstance(arg, JList | JSet | list):
            items = list(vm.iterate(arg))
            _grow(vm, len(items))
            if isinstance(obj, JSet):
                for v in items:
                    obj.map.put(vm, v, None)
            else:
                obj.extend(items)
        elif isinstance(obj, TreeMap) and arg is not None and not isinstance(arg, int):
            obj.comparator = arg
        elif isinstance(obj, JMap) and isinstance(arg, int) and arg > 0:
            obj.capacity = 1 << max(0, (arg - 1).bit_length())
    return init


NATIVE_CLASSES: dict[str, Callable] = {}
for _type in (JList, CopyOnWriteList, LinkedList, JMap, LinkedMap, TreeMap, JSet, LinkedSet, TreeSet):
    NATIVE_CLASSES[_type.java_class] = _type
    for _sig in ("()V", "(I)V", "(Ljava/util/Collection;)V", "(Ljava/util/Map;)V", "(Ljava/util/Comparator;)V"):
        NATIVES[f"{_type.java_class}-><init>{_sig}"] = _constructor(_type)
NATIVE_CLASSES["Ljava/util/Vector;"] = JList
INTERFACES = {JList: ("Ljava/util/List;", "Ljava/util/Collection;", "Ljava/lang/Iterable;"),
              JSet: ("Ljava/util/Set;", "Ljava/util/Collection;", "Ljava/lang/Iterable;"),
              JMap: ("Ljava/util/Map;",), JIterator: ("Ljava/util/Iterator;",), JEntry: ("Ljava/util/Map$Entry;",)}


# ---- Collections, Arrays ----
def _array_to_string(vm, arr, kind="L"):
    if arr is None:
        return "null"
    return "[" + ", ".join(vm.stringify(v, kind) for v in arr) + "]"


def _deep_to_string(vm, arr, outer: tuple = ()) -> str:
    """Arrays.deepToString: nested arrays printed by their own element type (a double[] inside an
    Object[] as doubles), an array inside itself as [...], as OpenJDK does."""
    if arr is None:
        return "null"
    parts = []
    for v in arr:
        if isinstance(v, JArray) and v.type[1] not in "L[":
            parts.append(_array_to_string(vm, v, v.type[1]))
        elif isinstance(v, list) and not hasattr(v, "java_class"):
            seen = any(v is a for a in (*outer, arr))
            parts.append("[...]" if seen else _deep_to_string(vm, v, (*outer, arr)))
        else:
            parts.append(vm.stringify(v))
    return "[" + ", ".join(parts) + "]"


def _sort_array(kind: str):
    """Arrays.sort(a), (a, cmp), (a, from, to): primitives by value (doubles with -0.0 before 0.0 and
    NaN last, as Java orders them), objects naturally or by the comparator."""
    def sort(vm, arr, *rest):
        comparator = rest[0] if len(rest) == 1 else None
        lo, hi = (rest[0], rest[1]) if len(rest) == 2 else (0, len(arr))
        if kind in PRIMITIVE_ORDER:
            arr[lo:hi] = sorted(arr[lo:hi], key=PRIMITIVE_ORDER[kind])
        else:
            arr[lo:hi] = sorted(arr[lo:hi], key=functools.cmp_to_key(lambda a, b: vm.compare(a, b, comparator)))
    return sort


def _float_order(x: float) -> tuple:
    return (x != x, x, math.copysign(1.0, x))


PRIMITIVE_ORDER: dict[str, Callable] = {**{k: int for k in "IJCBSZ"}, "D": lambda v: _float_order(f64(v)),
                                        "F": lambda v: _float_order(f32(v))}


NATIVES.update({
    "Ljava/util/Collections;->sort(Ljava/util/List;)V": _sort_list,
    "Ljava/util/Collections;->sort(Ljava/util/List;Ljava/util/Comparator;)V": _sort_list,
    "Ljava/util/Collections;->reverse(Ljava/util/List;)V": lambda vm, lst: lst.reverse(),
    f"Ljava/util/Collections;->max(Ljava/util/Collection;){OBJ}":
        lambda vm, c: max(vm.iterate(c), key=functools.cmp_to_key(lambda a, b: vm.compare(a, b, None))),
    f"Ljava/util/Collections;->min(Ljava/util/Collection;){OBJ}":
        lambda vm, c: min(vm.iterate(c), key=functools.cmp_to_key(lambda a, b: vm.compare(a, b, None))),
    "Ljava/util/Collections;->emptyList()Ljava/util/List;": lambda vm: JList(),
    f"Ljava/util/Arrays;->asList([{OBJ})Ljava/util/List;": lambda vm, arr: JList(arr),
    "Ljava/util/Arrays;->fill([II)V": lambda vm, arr, v: arr.__setitem__(slice(None), [v] * len(arr)),
    f"Ljava/util/Arrays;->fill([{OBJ}{OBJ})V": lambda vm, arr, v: arr.__setitem__(slice(None), [v] * len(arr)),
})
for _k in ("I", "J", "C", "B", "S", "D", "F", "Z", OBJ):
    _kind = _k if len(_k) == 1 else "L"
    NATIVES[f"Ljava/util/Arrays;->toString([{_k})Ljava/lang/String;"] = \
        (lambda kind: lambda vm, arr: _array_to_string(vm, arr, kind))(_kind)
    NATIVES[f"Ljava/util/Arrays;->sort([{_k})V"] = _sort_array(_kind)
    NATIVES[f"Ljava/util/Arrays;->sort([{_k}II)V"] = _sort_array(_kind)
    NATIVES[f"Ljava/util/Arrays;->equals([{_k}[{_k})Z"] = lambda vm, a, b: int(a == b)
    NATIVES[f"Ljava/util/Arrays;->copyOf([{_k}I)[{_k}"] = \
        (lambda zero: lambda vm, a, n: (vm.allocate(8 * n + 64),
                                        copy_array(a[:n] + [zero] * max(0, n - len(a)), a))[1])(
            None if _k == OBJ else 0)
    NATIVES[f"Ljava/util/Arrays;->copyOfRange([{_k}II)[{_k}"] = lambda vm, a, lo, hi: copy_array(a[lo:hi], a)
NATIVES[f"Ljava/util/Arrays;->sort([{OBJ}Ljava/util/Comparator;)V"] = _sort_array("L")
NATIVES[f"Ljava/util/Arrays;->deepToString([{OBJ})Ljava/lang/String;"] = _deep_to_string


# ---- Random (OpenJDK's 48-bit LCG: a seeded Random gives the JVM's numbers), Objects ----
class Random:
    java_class = "Ljava/util/Random;"
    MULTIPLIER, MASK = 0x5DEECE66D, (1 << 48) - 1

    def __init__(self):
        self.set_seed(time.time_ns())

    def set_seed(self, seed: int) -> None:
        self.seed = (seed ^ self.MULTIPLIER) & self.MASK

    def next(self, bits: int) -> int:
        self.seed = (self.seed * self.MULTIPLIER + 0xB) & self.MASK
        return i32(self.seed >> (48 - bits))

    def next_int(self, bound: int) -> int:
        if bound <= 0:
            throw("java.lang.IllegalArgumentException", "bound must be positive")
        r, m = self.next(31), bound - 1
        if bound & m == 0:
            return i32((bound * r) >> 31)
        u = r
        while True:
            r = u % bound
            if i32(u - r + m) >= 0:
                return r
            u = self.next(31)


NATIVE_CLASSES[Random.java_class] = Random
METHODS[Random] = {
    "nextInt()I": lambda vm, r: r.next(32), "nextInt(I)I": lambda vm, r, n: r.next_int(n),
    "nextLong()J": lambda vm, r: i64((r.next(32) << 32) + r.next(32)),
    "nextBoolean()Z": lambda vm, r: int(r.next(1) != 0),
    "nextDouble()D": lambda vm, r: bits64(((r.next(26) << 27) + r.next(27)) * 2.0 ** -53),
    "setSeed(J)V": lambda vm, r, seed: r.set_seed(seed)}
NATIVES["Ljava/util/Random;-><init>()V"] = lambda vm, r: None
NATIVES["Ljava/util/Random;-><init>(J)V"] = lambda vm, r, seed: r.set_seed(seed)
NATIVES.update({
    f"Ljava/util/Objects;->equals({OBJ}{OBJ})Z": lambda vm, a, b: int(a is b or (a is not None and vm.equals(a, b))),
    f"Ljava/util/Objects;->hashCode({OBJ})I": lambda vm, o: java_hash(vm, o),
    f"Ljava/util/Objects;->hash([{OBJ})I":
        lambda vm, items: functools.reduce(lambda h, v: i32(31 * h + java_hash(vm, v)), items or [], 1),
    f"Ljava/util/Objects;->toString({OBJ})Ljava/lang/String;": lambda vm, o: vm.stringify(o),
    f"Ljava/util/Objects;->requireNonNull({OBJ}){OBJ}":
        lambda vm, o: o if o is not None else throw("java.lang.NullPointerException"),
    f"Ljava/util/Objects;->requireNonNull({OBJ}Ljava/lang/String;){OBJ}":
        lambda vm, o, message: o if o is not None else throw("java.lang.NullPointerException", message),
    "Ljava/lang/System;->currentTimeMillis()J": lambda vm: time.time_ns() // 1_000_000,
    "Ljava/lang/System;->nanoTime()J": lambda vm: time.monotonic_ns(),
})


# ---- java.util.concurrent.atomic: plain values (threads run one at a time) ----
class Atomic:
    java_class = "Ljava/util/concurrent/atomic/AtomicInteger;"
    wrap = staticmethod(i32)

    def __init__(self):
        self.value = 0

    def java_string(self, vm) -> str:
        return str(self.value)

    def add(self, delta: int, before: bool) -> int:
        old, self.value = self.value, self.wrap(self.value + delta)
        return old if before else self.value


class AtomicLong(Atomic):
    java_class = "Ljava/util/concurrent/atomic/AtomicLong;"
    wrap = staticmethod(i64)


for _atomic, _k in ((Atomic, "I"), (AtomicLong, "J")):
    NATIVE_CLASSES[_atomic.java_class] = _atomic
    NATIVES[f"{_atomic.java_class}-><init>()V"] = lambda vm, a: None
    NATIVES[f"{_atomic.java_class}-><init>({_k})V"] = lambda vm, a, v: setattr(a, "value", v)
    METHODS[_atomic] = {
        f"get(){_k}": lambda vm, a: a.value, f"set({_k})V": lambda vm, a, v: setattr(a, "value", v),
        f"incrementAndGet(){_k}": lambda vm, a: a.add(1, False),
        f"decrementAndGet(){_k}": lambda vm, a: a.add(-1, False),
        f"getAndIncrement(){_k}": lambda vm, a: a.add(1, True), f"getAndDecrement(){_k}": lambda vm, a: a.add(-1, True),
        f"addAndGet({_k}){_k}": lambda vm, a, d: a.add(d, False),
        f"getAndAdd({_k}){_k}": lambda vm, a, d: a.add(d, True),
        f"compareAndSet({_k}{_k})Z": lambda vm, a, old, new: int(a.value == old and not setattr(a, "value", new)),
        "toString()Ljava/lang/String;": lambda vm, a: str(a.value)}


class ImmutableList(JList):
    """List.of(...): reads like an ArrayList; every change is UnsupportedOperationException."""
    java_class = "Ljava/util/ImmutableCollections$ListN;"


METHODS[ImmutableList] = {sig: (lambda vm, *a: throw("java.lang.UnsupportedOperationException"))
                          for sig in LIST_METHODS if sig.split("(")[0] in
                          ("add", "set", "remove", "clear", "addAll", "sort", "addFirst", "addLast", "removeFirst",
                           "removeLast")}
NATIVES[f"Ljava/util/List;->of([{OBJ})Ljava/util/List;"] = lambda vm, arr: _list_of(vm, *arr)
for _n in range(11):  # javac calls the fixed-arity List.of for up to 10 elements
    NATIVES[f"Ljava/util/List;->of({OBJ * _n})Ljava/util/List;"] = lambda vm, *items: _list_of(vm, *items)


def _list_of(vm, *items) -> ImmutableList:
    if any(v is None for v in items):
        throw("java.lang.NullPointerException")
    _grow(vm, len(items))
    return ImmutableList(items)
NATIVES["Ljava/util/Collections;->unmodifiableList(Ljava/util/List;)Ljava/util/List;"] = \
    lambda vm, lst: (_grow(vm, len(lst)), ImmutableList(lst))[1]  # a copy, not a view of lst
