"""java.util.stream as command-line programs use it, evaluated eagerly (each step makes the next
list; Java's laziness shows only in side effects of `peek`/`map` on elements a later `limit` or
`findFirst` would not have pulled, and in infinite streams, which do not exist here): `Stream`,
`IntStream`, `LongStream`, `DoubleStream` from collections, arrays, `Stream.of`, `IntStream.range`,
`String.chars`; the common intermediate and terminal operations; `Collectors.toList/toSet/joining/
groupingBy/counting/toMap`; `Optional`, `OptionalInt`, `OptionalDouble`. Lambdas and the program's
own functional objects are called through the interpreter (`call_interface`)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from cerebro.loaders.dexlib_lang import JBox, new_string, throw
from cerebro.loaders.dexlib_util import ImmutableList, JList, JMap, JSet
from cerebro.loaders.dexvalues import bits64, f64, i32, i64

P = "Ljava/util/stream/"
FN = "Ljava/util/function/"
OBJ, STR = "Ljava/lang/Object;", "Ljava/lang/String;"
STREAMS = {"L": f"{P}Stream;", "I": f"{P}IntStream;", "J": f"{P}LongStream;", "D": f"{P}DoubleStream;"}
OPTIONALS = {"L": "Ljava/util/Optional;", "I": "Ljava/util/OptionalInt;", "J": "Ljava/util/OptionalLong;",
             "D": "Ljava/util/OptionalDouble;"}
PREFIX = {"L": "", "I": "Int", "J": "Long", "D": "Double"}  # IntPredicate, LongPredicate, ...
SOURCES = ("Ljava/util/Collection;", "Ljava/util/List;", "Ljava/util/Set;", "Ljava/util/ArrayList;",
           "Ljava/util/LinkedList;", "Ljava/util/HashSet;", "Ljava/util/LinkedHashSet;", "Ljava/util/TreeSet;",
           "Ljava/util/concurrent/CopyOnWriteArrayList;")


class JStream:
    """A stream's elements, already computed; kind L (objects), I, J or D (primitives in register form)."""
    java_class = STREAMS["L"]  # (IntStream and the others: the library tells types apart by Python class)

    def __init__(self, items: list, kind: str = "L"):
        self.items, self.kind = items, kind


class JOptional:
    java_class = OPTIONALS["L"]

    def __init__(self, value, kind: str = "L", present: bool = True):
        self.value, self.kind, self.present = value, kind, present and not (kind == "L" and value is None)

    def java_string(self, vm) -> str:
        name = OPTIONALS[self.kind][1:-1].rsplit("/", 1)[-1]
        return f"{name}[{vm.stringify(self.value, self.kind)}]" if self.present else f"{name}.empty"


class Collector:
    java_class = f"{P}Collector;"

    def __init__(self, finish: Callable):
        self.finish = finish  # (vm, items) -> result


class JFunction:
    """A functional object the library makes (a Comparator, Function.identity()): `java_call` is its one
    method, whatever the interface calls it."""
    java_class = "Ljava/util/Comparator;"

    def __init__(self, call: Callable):
        self.java_call = call  # (vm, *args) -> result


def _key_order(key_fn, name: str = "apply", order=None) -> JFunction:
    """Comparator.comparing(keyExtractor[, keyComparator]), comparingInt/Long/Double."""
    def compare(vm, a, b):
        ka, kb = vm.call_interface(key_fn, name, a), vm.call_interface(key_fn, name, b)
        if name == "applyAsDouble":
            ka, kb = f64(ka), f64(kb)
        return vm.compare(ka, kb, order) if name == "apply" else (ka > kb) - (ka < kb)
    return JFunction(compare)


def _then(first, second) -> JFunction:
    return JFunction(lambda vm, a, b: vm.compare(a, b, first) or vm.compare(a, b, second))


def _entry_order(part: str) -> JFunction:
    def value(vm, e):
        return e.key if part == "key" else e.owner.data[vm.key(e.key)]
    return JFunction(lambda vm, a, b: vm.compare(value(vm, a), value(vm, b)))


COMPARATOR = "Ljava/util/Comparator;"
NATURAL = JFunction(lambda vm, a, b: vm.compare(a, b))
REVERSE = JFunction(lambda vm, a, b: vm.compare(b, a))
FUNCTIONS: dict[str, Callable] = {
    f"{COMPARATOR}->naturalOrder(){COMPARATOR}": lambda vm: NATURAL,
    f"{COMPARATOR}->reverseOrder(){COMPARATOR}": lambda vm: REVERSE,
    f"Ljava/util/Collections;->reverseOrder(){COMPARATOR}": lambda vm: REVERSE,
    f"{COMPARATOR}->comparing({FN}Function;){COMPARATOR}": lambda vm, f: _key_order(f),
    f"{COMPARATOR}->comparing({FN}Function;{COMPARATOR}){COMPARATOR}": lambda vm, f, c: _key_order(f, "apply", c),
    **{f"{COMPARATOR}->comparing{t}({FN}To{t}Function;){COMPARATOR}":
       (lambda name: lambda vm, f: _key_order(f, name))(f"applyAs{t}") for t in ("Int", "Long", "Double")},
    f"{COMPARATOR}->reversed(){COMPARATOR}": lambda vm, c: JFunction(lambda vm2, a, b: vm2.compare(b, a, c)),
    f"{COMPARATOR}->thenComparing({COMPARATOR}){COMPARATOR}": lambda vm, c, other: _then(c, other),
    f"{COMPARATOR}->thenComparing({FN}Function;){COMPARATOR}": lambda vm, c, f: _then(c, _key_order(f)),
    **{f"{COMPARATOR}->thenComparing{t}({FN}To{t}Function;){COMPARATOR}":
       (lambda name: lambda vm, c, f: _then(c, _key_order(f, name)))(f"applyAs{t}") for t in ("Int", "Long", "Double")},
    f"Ljava/util/Map$Entry;->comparingByKey(){COMPARATOR}": lambda vm: _entry_order("key"),
    f"Ljava/util/Map$Entry;->comparingByValue(){COMPARATOR}": lambda vm: _entry_order("value"),
    f"{FN}Function;->identity()Ljava/util/function/Function;": lambda vm: JFunction(lambda vm2, v: v),
}


def _get(vm, opt: JOptional):
    return opt.value if opt.present else throw("java.util.NoSuchElementException", "No value present")


def _new_list(vm, items) -> JList:
    vm.allocate(8 * len(items) + 64)
    return JList(items)


def _to_set(vm, items) -> JSet:
    s = JSet()
    for v in items:
        s.map.put(vm, v, None)
    return s


def _grouping(classify, downstream=None, make_map=None):
    def finish(vm, items):
        groups: dict = {}
        order = []
        for v in items:
            k = vm.call_interface(classify, "apply", v)
            if vm.key(k) not in groups:
                order.append(k)
                groups[vm.key(k)] = []
            groups[vm.key(k)].append(v)
        out = vm.call_interface(make_map, "get") if make_map is not None else JMap()
        for k in order:
            out.put(vm, k, (downstream or Collector(_new_list)).finish(vm, groups[vm.key(k)]))
        return out
    return Collector(finish)


def _to_map(key_fn, value_fn):
    def finish(vm, items):
        out = JMap()
        for v in items:
            k = vm.call_interface(key_fn, "apply", v)
            value = vm.call_interface(value_fn, "apply", v)
            if vm.key(k) in out.data:
                throw("java.lang.IllegalStateException", f"Duplicate key {vm.stringify(k)} (attempted merging values "
                      f"{vm.stringify(out.data[vm.key(k)])} and {vm.stringify(value)})")
            out.put(vm, k, value)
        return out
    return Collector(finish)


def _joining(sep="", prefix="", suffix=""):
    return Collector(lambda vm, items: new_string(vm, str(prefix) + str(sep).join(map(vm.stringify, items))
                                                  + str(suffix)))


def _sum(kind: str, items: list):
    if kind == "D":
        return bits64(float(sum(f64(v) for v in items)))
    return i32(sum(items)) if kind == "I" else i64(sum(items))


def _sorted(vm, s: JStream, comparator=None) -> JStream:
    if s.kind == "D":
        return JStream(sorted(s.items, key=f64), "D")
    if s.kind != "L":
        return JStream(sorted(s.items), s.kind)
    return JStream(sorted(s.items, key=functools.cmp_to_key(lambda a, b: vm.compare(a, b, comparator))))


def _distinct(vm, s: JStream) -> JStream:
    seen: dict = {}
    for v in s.items:
        seen.setdefault(vm.key(v) if s.kind == "L" else v, v)
    return JStream(list(seen.values()), s.kind)


def _extreme(vm, s: JStream, sign: int, comparator=None) -> JOptional:
    if not s.items:
        return JOptional(None, s.kind, False)
    best = s.items[0]
    for v in s.items[1:]:
        order = vm.compare(v, best, comparator) if s.kind == "L" else (f64(v) > f64(best)) - (f64(v) < f64(best)) \
            if s.kind == "D" else (v > best) - (v < best)
        if order * sign > 0:
            best = v
    return JOptional(best, s.kind)


def _reduce(vm, s: JStream, name: str, op, identity=None, has_identity=False):
    items = list(s.items)
    if not has_identity:
        if not items:
            return JOptional(None, s.kind, False)
        identity = items.pop(0)
    for v in items:
        identity = vm.call_interface(op, name, identity, v)
    return identity if has_identity else JOptional(identity, s.kind)


def _stream_methods(kind: str) -> dict[str, Callable]:
    """The methods of Stream (kind L) or IntStream/LongStream/DoubleStream, by signature."""
    S, pre = STREAMS[kind], PREFIX[kind]
    el = OBJ if kind == "L" else kind  # the element type in signatures
    apply = "apply" if kind == "L" else f"applyAs{pre}"
    methods: dict[str, Callable] = {
        f"filter({FN}{pre}Predicate;){S}": lambda vm, s, p: JStream(
            [v for v in s.items if vm.call_interface(p, "test", v)], s.kind),
        f"map({FN}{'Function' if kind == 'L' else pre + 'UnaryOperator'};){S}": lambda vm, s, f: JStream(
            [vm.call_interface(f, apply, v) for v in s.items], s.kind),
        f"forEach({FN}{pre}Consumer;)V": lambda vm, s, c: [vm.call_interface(c, "accept", v)
                                                            for v in s.items] and None,
        f"peek({FN}{pre}Consumer;){S}": lambda vm, s, c: ([vm.call_interface(c, "accept", v) for v in s.items], s)[1],
        f"sorted(){S}": _sorted, f"distinct(){S}": _distinct,
        f"limit(J){S}": lambda vm, s, n: JStream(s.items[:max(n, 0)], s.kind) if n >= 0 else throw(
            "java.lang.IllegalArgumentException", str(n)),
        f"skip(J){S}": lambda vm, s, n: JStream(s.items[max(n, 0):], s.kind) if n >= 0 else throw(
            "java.lang.IllegalArgumentException", str(n)),
        "count()J": lambda vm, s: len(s.items),
        f"anyMatch({FN}{pre}Predicate;)Z": lambda vm, s, p: int(any(vm.call_interface(p, "test", v) for v in s.items)),
        f"allMatch({FN}{pre}Predicate;)Z": lambda vm, s, p: int(all(vm.call_interface(p, "test", v) for v in s.items)),
        f"noneMatch({FN}{pre}Predicate;)Z": lambda vm, s, p: int(not any(vm.call_interface(p, "test", v)
                                                                          for v in s.items)),
        f"findFirst(){OPTIONALS[kind]}": lambda vm, s: JOptional(s.items[0] if s.items else None, s.kind,
                                                                  bool(s.items)),
        f"findAny(){OPTIONALS[kind]}": lambda vm, s: JOptional(s.items[0] if s.items else None, s.kind, bool(s.items)),
        f"reduce({FN}{'Binary' if kind == 'L' else pre + 'Binary'}Operator;){OPTIONALS[kind]}":
            lambda vm, s, op: _reduce(vm, s, apply, op),
        f"reduce({el}{FN}{'Binary' if kind == 'L' else pre + 'Binary'}Operator;){el}":
            lambda vm, s, identity, op: _reduce(vm, s, apply, op, identity, True),
    }
    if kind == "L":
        for target, name in (("I", "mapToInt"), ("J", "mapToLong"), ("D", "mapToDouble")):
            methods[f"{name}({FN}To{PREFIX[target]}Function;){STREAMS[target]}"] = (
                lambda t, n: lambda vm, s, f: JStream([vm.call_interface(f, n, v) for v in s.items], t))(
                target, f"applyAs{PREFIX[target]}")
        methods.update({
            f"flatMap({FN}Function;){S}": lambda vm, s, f: JStream(
                [x for v in s.items for x in vm.call_interface(f, "apply", v).items]),
            f"sorted(Ljava/util/Comparator;){S}": _sorted,
            f"collect({P}Collector;){OBJ}": lambda vm, s, c: c.finish(vm, s.items),
            "toList()Ljava/util/List;": lambda vm, s: ImmutableList(s.items),
            f"toArray()[{OBJ}": lambda vm, s: list(s.items),
            f"toArray({FN}IntFunction;)[{OBJ}": lambda vm, s, f: list(s.items),
            f"min(Ljava/util/Comparator;){OPTIONALS['L']}": lambda vm, s, c: _extreme(vm, s, -1, c),
            f"max(Ljava/util/Comparator;){OPTIONALS['L']}": lambda vm, s, c: _extreme(vm, s, 1, c),
        })
    else:
        methods.update({
            f"sum(){kind}": lambda vm, s: _sum(s.kind, s.items),
            f"min(){OPTIONALS[kind]}": lambda vm, s: _extreme(vm, s, -1),
            f"max(){OPTIONALS[kind]}": lambda vm, s: _extreme(vm, s, 1),
            f"average(){OPTIONALS['D']}": lambda vm, s: JOptional(
                bits64(sum(f64(v) if s.kind == "D" else v for v in s.items) / len(s.items)) if s.items else None,
                "D", bool(s.items)),
            f"boxed(){STREAMS['L']}": lambda vm, s: JStream([JBox(s.kind, v) for v in s.items]),
            f"toArray()[{kind}": lambda vm, s: list(s.items),
            f"mapToObj({FN}{pre}Function;){STREAMS['L']}": lambda vm, s, f: JStream(
                [vm.call_interface(f, "apply", v) for v in s.items]),
        })
        if kind == "I":
            methods[f"asDoubleStream(){STREAMS['D']}"] = lambda vm, s: JStream([bits64(float(v)) for v in s.items], "D")
            methods[f"asLongStream(){STREAMS['J']}"] = lambda vm, s: JStream(list(s.items), "J")
    return methods


def _optional_methods(kind: str) -> dict[str, Callable]:
    el = OBJ if kind == "L" else kind
    get = "get" if kind == "L" else f"getAs{PREFIX[kind]}"
    return {
        "isPresent()Z": lambda vm, o: int(o.present), "isEmpty()Z": lambda vm, o: int(not o.present),
        f"{get}(){el}": _get, f"orElseThrow(){el}": _get,
        f"orElse({el}){el}": lambda vm, o, other: o.value if o.present else other,
        f"ifPresent({FN}{PREFIX[kind]}Consumer;)V": lambda vm, o, c: (
            vm.call_interface(c, "accept", o.value) if o.present else None) and None,
        f"toString(){STR}": lambda vm, o: o.java_string(vm),
        f"equals({OBJ})Z": lambda vm, o, other: int(isinstance(other, JOptional) and other.present == o.present
                                                    and (not o.present or vm.equals(o.value, other.value))),
    }


NATIVES: dict[str, Callable] = {
    **{f"{src}->stream(){STREAMS['L']}": (lambda vm, c: JStream(list(vm.iterate(c)))) for src in SOURCES},
    f"{STR}->chars(){STREAMS['I']}": lambda vm, s: JStream([ord(c) for c in s], "I"),
    f"{STREAMS['I']}->range(II){STREAMS['I']}": lambda vm, a, b: (vm.allocate(8 * max(b - a, 0)),
                                                                 JStream(list(range(a, b)), "I"))[1],
    f"{STREAMS['I']}->rangeClosed(II){STREAMS['I']}": lambda vm, a, b: (vm.allocate(8 * max(b - a + 1, 0)),
                                                                       JStream(list(range(a, b + 1)), "I"))[1],
    f"{STREAMS['I']}->of([I){STREAMS['I']}": lambda vm, a: JStream(list(a), "I"),
    f"{STREAMS['L']}->of([{OBJ}){STREAMS['L']}": lambda vm, a: JStream(list(a)),
    f"{STREAMS['L']}->of({OBJ}){STREAMS['L']}": lambda vm, v: JStream([v]),
    **{f"{STREAMS[k]}->empty(){STREAMS[k]}": (lambda kind: lambda vm: JStream([], kind))(k) for k in "LIJD"},
    f"Ljava/util/Arrays;->stream([{OBJ}){STREAMS['L']}": lambda vm, a: JStream(list(a)),
    **{f"Ljava/util/Arrays;->stream([{k}){STREAMS[k]}": (lambda kind: lambda vm, a: JStream(list(a), kind))(k)
       for k in "IJD"},
    f"{P}Collectors;->toList(){P}Collector;": lambda vm: Collector(_new_list),
    f"{P}Collectors;->toSet(){P}Collector;": lambda vm: Collector(_to_set),
    f"{P}Collectors;->counting(){P}Collector;": lambda vm: Collector(lambda vm, items: JBox("J", len(items))),
    f"{P}Collectors;->joining(){P}Collector;": lambda vm: _joining(),
    f"{P}Collectors;->joining(Ljava/lang/CharSequence;){P}Collector;": lambda vm, sep: _joining(vm.stringify(sep)),
    f"{P}Collectors;->joining(Ljava/lang/CharSequence;Ljava/lang/CharSequence;Ljava/lang/CharSequence;){P}Collector;":
        lambda vm, sep, pre, suf: _joining(vm.stringify(sep), vm.stringify(pre), vm.stringify(suf)),
    f"{P}Collectors;->groupingBy({FN}Function;){P}Collector;": lambda vm, f: _grouping(f),
    f"{P}Collectors;->groupingBy({FN}Function;{P}Collector;){P}Collector;": lambda vm, f, d: _grouping(f, d),
    f"{P}Collectors;->groupingBy({FN}Function;{FN}Supplier;{P}Collector;){P}Collector;":
        lambda vm, f, make, d: _grouping(f, d, make),
    f"{P}Collectors;->mapping({FN}Function;{P}Collector;){P}Collector;": lambda vm, f, d: Collector(
        lambda vm2, items: d.finish(vm2, [vm2.call_interface(f, "apply", v) for v in items])),
    **FUNCTIONS,
    f"{P}Collectors;->toMap({FN}Function;{FN}Function;){P}Collector;": lambda vm, k, v: _to_map(k, v),
    f"Ljava/util/Optional;->of({OBJ})Ljava/util/Optional;": lambda vm, v: JOptional(v) if v is not None else throw(
        "java.lang.NullPointerException"),
    f"Ljava/util/Optional;->ofNullable({OBJ})Ljava/util/Optional;": lambda vm, v: JOptional(v),
    "Ljava/util/Optional;->empty()Ljava/util/Optional;": lambda vm: JOptional(None, "L", False),
}
METHODS: dict[type, dict[str, Callable]] = {JStream: {}, JOptional: {}, Collector: {}, JFunction: {
    f"compare({OBJ}{OBJ})I": lambda vm, f, a, b: f.java_call(vm, a, b),
    f"apply({OBJ}){OBJ}": lambda vm, f, v: f.java_call(vm, v)}}
for _kind in "LIJD":
    METHODS[JStream].update(_stream_methods(_kind))
    METHODS[JOptional].update(_optional_methods(_kind))
NATIVE_CLASSES: dict[str, Callable] = {}
STATIC_FIELDS: dict = {}
