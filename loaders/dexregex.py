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
def _parsed(pattern: str) -> tuple[re.Pattern, list]:
    try:
        tree = sre_parse.parse(pattern).data
        _bound(tree, 1, 1)  # refuses exponential patterns once, whatever the subject
        return re.compile(pattern), tree
    except (re.error, RecursionError, OverflowError) as e:
        raise JavaThrow("java.util.regex.PatternSyntaxException",
                        f"{e} near index {getattr(e, 'pos', 0)}\n{pattern}") from None
    except UnboundedPattern as e:
        raise JavaThrow("java.util.regex.PatternSyntaxException",
                        f"worst-case matching cost is unbounded ({e}) near index 0\n{pattern}") from None


def _bound(seq: list, n: int, after: int) -> int:
    """Steps to match seq at one position and then a continuation whose bound is `after`."""
    for op, av in reversed(seq):
        after = min(_item_bound(op, av, n, after), _SATURATED)
    return after


def _item_bound(op, av, n: int, after: int) -> int:
    if op in _ONE_CHARACTER or op is sre.AT:
        return after + 1
    if op is sre.SUBPATTERN:
        return _bound(av[-1], n, after)
    if op is sre.ATOMIC_GROUP:
        return _bound(av, n, 1) + after
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return _bound(av[1], n, 1) + after
    if op is sre.BRANCH:
        return sum(_bound(alternative, n, after) for alternative in av[1])
    if op is sre.GROUPREF:
        return n + after
    if op is sre.GROUPREF_EXISTS:
        return _bound(av[1], n, after) + _bound(av[2] or [], n, after)
    if op in _REPEATS:
        _low, high, body = av
        if high <= 1:
            return _bound(body, n, after) + after
        if not _one_way(body):
            raise UnboundedPattern("a repeat of something that can match the same text in several ways")
        counts = min(high, n) + 1
        return counts * (_bound(body, n, 1) + after)
    raise UnboundedPattern(f"{op} is not analysed")


def _one_way(seq: list) -> bool:
    """True when seq matches at most one way from a given position (no repeat, branch or reference)."""
    return all(op in _ONE_CHARACTER or op is sre.AT or (op is sre.SUBPATTERN and _one_way(av[-1]))
               for op, av in seq)


def bounded_regex(vm, pattern: str, subject: str, searches: int = 1) -> re.Pattern:
    """The compiled pattern after its worst case on subject has been charged to vm's budget.

    searches: how many scans over every start position the caller makes (0: one anchored match)."""
    compiled, tree = _parsed(pattern)
    n = len(subject)
    steps = _bound(tree, n, 1) * max(searches * (n + 1), 1)
    vm.spend(steps // RE_STEPS_PER_INSTRUCTION + 1)
    return compiled
