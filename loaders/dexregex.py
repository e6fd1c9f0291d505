"""Java regexes for the dex interpreter, run by Python's re within the program's instruction budget.

Python's re backtracks, and it runs outside the interpreter's instruction count, so a hostile pattern
("(a+)+$" on "aaa...ab") could burn CPU without bound. Before each match the parsed pattern gets a
worst-case step bound for the subject's length n, computed over its continuations: a repeat of a body
that matches in one way only (single characters, groups of them) tries at most min(max, n) + 1
counts, each followed by the rest of the pattern; a branch tries each alternative; a back-reference
compares up to n characters. The bound is charged to the budget before re runs (a search multiplies it
by the n + 1 start positions). A repeat of anything that can match in several ways (a nested repeat, a
branch, an optional part) has an exponential worst case and is refused with PatternSyntaxException.
"""

from __future__ import annotations

import functools
import re
from re import _compiler as sre_compile
from re import _constants as sre
from re import _parser as sre_parse

from cerebro.loaders.dexexc import JavaThrow

RE_STEPS_PER_INSTRUCTION = 256  # re's C steps take ~10 ns, an interpreted instruction ~1-2 us
_SATURATED = 1 << 62  # bounds stop growing here: anything this large exceeds every budget
_ONE_CHARACTER = {sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN, sre.CATEGORY}
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}


class UnboundedPattern(Exception):
    """The pattern's worst case grows exponentially with the subject (or is not analysed)."""


@functools.lru_cache(maxsize=64)
def _parsed(pattern: str) -> tuple[re.Pattern, list, frozenset[int]]:
    try:
        parsed = sre_parse.parse(pattern)
        stops = frozenset(_stopping_repeats(parsed, parsed.data))
        _bound(parsed.data, 1, 1, stops)  # refuses exponential patterns once, whatever the subject
        return re.compile(pattern), parsed.data, stops
    except (re.error, RecursionError, OverflowError) as e:
        raise JavaThrow("java.util.regex.PatternSyntaxException",
                        f"{e} near index {getattr(e, 'pos', 0)}\n{pattern}") from None
    except UnboundedPattern as e:
        raise JavaThrow("java.util.regex.PatternSyntaxException",
                        f"worst-case matching cost is unbounded ({e}) near index 0\n{pattern}") from None


def _stopping_repeats(parsed: sre_parse.SubPattern, seq: list):
    """ids of the repeats followed by a literal that their body cannot start with: at every count but
    the last that the body matched, the rest of the pattern fails at its first character."""
    if any(op is sre.SUBPATTERN and (av[1] or av[2]) for op, av in _walk(seq)):
        return  # (?i:...) changes what a literal matches: no repeat is assumed to stop
    for items in _sequences(seq):
        for (op, av), (next_op, next_av) in zip(items, items[1:], strict=False):
            body = av[2] if op in _REPEATS else None
            if body and body[0][0] in _ONE_CHARACTER and next_op is sre.LITERAL and not sre_compile.compile(
                    sre_parse.SubPattern(parsed.state, body[:1])).fullmatch(chr(next_av)):
                yield id(av)


_NESTED = {  # the sequences inside an item, by opcode
    sre.SUBPATTERN: lambda av: [av[-1]], sre.ATOMIC_GROUP: lambda av: [av], sre.BRANCH: lambda av: av[1],
    sre.ASSERT: lambda av: [av[1]], sre.ASSERT_NOT: lambda av: [av[1]],
    sre.GROUPREF_EXISTS: lambda av: [av[1], av[2] or []],
    **{repeat: lambda av: [av[2]] for repeat in _REPEATS},
}


def _sequences(seq: list):
    """seq and every sequence nested in it."""
    yield seq
    for op, av in seq:
        for inner in _NESTED.get(op, lambda _av: [])(av):
            yield from _sequences(inner)


def _walk(seq: list):
    for items in _sequences(seq):
        yield from items


def _bound(seq: list, n: int, after: int, stops: frozenset[int]) -> int:
    """Steps to match seq at one position and then a continuation whose bound is `after`."""
    for op, av in reversed(seq):
        after = min(_item_bound(op, av, n, after, stops), _SATURATED)
    return after


def _item_bound(op, av, n: int, after: int, stops: frozenset[int]) -> int:
    if op in _ONE_CHARACTER or op is sre.AT:
        return after + 1
    if op is sre.SUBPATTERN:
        return _bound(av[-1], n, after, stops)
    if op is sre.ATOMIC_GROUP:
        return _bound(av, n, 1, stops) + after
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return _bound(av[1], n, 1, stops) + after
    if op is sre.BRANCH:
        return sum(_bound(alternative, n, after, stops) for alternative in av[1])
    if op is sre.GROUPREF:
        return n + after
    if op is sre.GROUPREF_EXISTS:
        return _bound(av[1], n, after, stops) + _bound(av[2] or [], n, after, stops)
    if op in _REPEATS:
        _low, high, body = av
        if high <= 1:
            return _bound(body, n, after, stops) + after
        if not _one_way(body):
            raise UnboundedPattern("a repeat of something that can match the same text in several ways")
        counts = min(high, n) + 1
        if id(av) in stops:  # the rest is tried in full once, at the count where the body stopped
            return counts * (_bound(body, n, 1, stops) + 1) + after
        return counts * (_bound(body, n, 1, stops) + after)
    raise UnboundedPattern(f"{op} is not analysed")


def _one_way(seq: list) -> bool:
    """True when seq matches at most one way from a given position (no repeat, branch or reference)."""
    return all(op in _ONE_CHARACTER or op is sre.AT or (op is sre.SUBPATTERN and _one_way(av[-1]))
               for op, av in seq)


def _scan_bound(tree: list, n: int, stops: frozenset[int]) -> int:
    """Steps for one scan over every start position (split, replaceAll).

    A pattern that is one-way but for a greedy repeat at its end (",\\s*", "\\s+", "[0-9]+") never
    rescans: a failing start stops within the prefix or the repeat's minimum, and a match consumes
    what its repeat scanned, so the scan is linear. Anything else may rescan from every start."""
    if tree and tree[-1][0] is sre.MAX_REPEAT and _one_way(tree[:-1]) and _one_way(tree[-1][1][2]):
        low, _high, body = tree[-1][1]
        width = _bound(body, n, 1, stops)
        return (n + 1) * (_bound(tree[:-1], n, 1, stops) + (min(low, n) + 2) * width)
    return (n + 1) * _bound(tree, n, 1, stops)


def bounded_regex(vm, pattern: str, subject: str, searches: int = 1) -> re.Pattern:
    """The compiled pattern after its worst case on subject has been charged to vm's budget.

    searches: how many scans over every start position the caller makes (0: one anchored match)."""
    compiled, tree, stops = _parsed(pattern)
    n = len(subject)
    steps = searches * _scan_bound(tree, n, stops) if searches else _bound(tree, n, 1, stops)
    vm.spend(steps // RE_STEPS_PER_INSTRUCTION + 1)
    return compiled


def replace_all(vm, subject: str, pattern: str, replacement: str) -> str:
    """String.replaceAll: each replacement is asked of the heap as it is made, so one that repeats
    a group at every position ("(?=(.*))" -> "$1": n²/2 characters) is an OutOfMemoryError, not host memory."""
    compiled = bounded_regex(vm, pattern, subject)
    template = re.sub(r"\$(\d)", r"\\\1", replacement)
    pieces, at = [], 0
    try:
        for match in compiled.finditer(subject):
            piece = match.expand(template)
            vm.allocate(match.start() - at + len(piece))
            pieces += (subject[at:match.start()], piece)
            at = match.end()
    except (re.error, IndexError) as e:
        raise JavaThrow("java.lang.IndexOutOfBoundsException", str(e)) from None
    pieces.append(subject[at:])
    return "".join(pieces)
