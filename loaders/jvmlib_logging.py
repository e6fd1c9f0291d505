"""java.util.logging as a program sees it with the JVM's default configuration: one Logger per name,
levels inherited from the root logger (INFO), and the root's ConsoleHandler (level INFO) writing
each record to stderr in SimpleFormatter's two lines (`Dec 05, 2026 3:27:16 PM Class method`, then
`LEVEL: message`). No handlers, filters or formatters of the program's own."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cerebro.loaders.dexexc import java_name

LOGGER, LEVEL, STRING = "Ljava/util/logging/Logger;", "Ljava/util/logging/Level;", "Ljava/lang/String;"
LEVEL_VALUES = {"OFF": 0x7FFFFFFF, "SEVERE": 1000, "WARNING": 900, "INFO": 800, "CONFIG": 700, "FINE": 500,
                "FINER": 400, "FINEST": 300, "ALL": -0x80000000}
CONSOLE_LEVEL = 800  # ConsoleHandler's default: INFO


@dataclass(frozen=True)
class Level:
    java_class = LEVEL
    name: str
    value: int

    def java_string(self, vm) -> str:
        return self.name


LEVELS = {name: Level(name, value) for name, value in LEVEL_VALUES.items()}


class Logger:
    java_class = LOGGER

    def __init__(self, name: str | None):
        self.name = name
        self.level: Level | None = None  # None: the root logger's, INFO

    def loggable(self, level: Level) -> bool:
        threshold = (self.level or LEVELS["INFO"]).value
        return level.value >= threshold and threshold != LEVEL_VALUES["OFF"]


def _get_logger(vm, name):
    if not hasattr(vm, "loggers"):
        vm.loggers = {}  # Logger.getLogger gives the same logger for a name
    return vm.loggers.setdefault(name, Logger(name))


def _log(vm, logger: Logger, level: Level, message) -> None:
    if logger.loggable(level) and level.value >= CONSOLE_LEVEL:
        caller = vm.stack[-1].ref if vm.stack else None
        source = f"{java_name(caller.class_name)} {caller.name}" if caller else logger.name
        stamp = time.strftime("%b %d, %Y %-I:%M:%S %p")
        vm.out.stream.flush()
        vm.err.stream.write(f"{stamp} {source}\n{level.name}: {message}\n")


NATIVES: dict[str, Callable] = {
    f"{LOGGER}->getLogger({STRING}){LOGGER}": _get_logger,
    f"{LOGGER}->getGlobal(){LOGGER}": lambda vm: _get_logger(vm, "global"),
}
METHODS: dict[type, dict[str, Callable]] = {
    Logger: {
        f"setLevel({LEVEL})V": lambda vm, lg, level: setattr(lg, "level", level),
        f"getLevel(){LEVEL}": lambda vm, lg: lg.level,
        f"getName(){STRING}": lambda vm, lg: lg.name,
        f"isLoggable({LEVEL})Z": lambda vm, lg, level: int(lg.loggable(level)),
        f"log({LEVEL}{STRING})V": _log,
        **{f"{name.lower()}({STRING})V": (lambda lv: lambda vm, lg, msg: _log(vm, lg, lv, msg))(LEVELS[name])
           for name in ("SEVERE", "WARNING", "INFO", "CONFIG", "FINE", "FINER", "FINEST")},
    },
    Level: {
        "intValue()I": lambda vm, level: level.value,
        f"getName(){STRING}": lambda vm, level: level.name,
        f"toString(){STRING}": lambda vm, level: level.name,
    },
}
NATIVE_CLASSES: dict[str, Callable] = {}
STATIC_FIELDS = {(LEVEL, name): (lambda lv: lambda vm: lv)(level) for name, level in LEVELS.items()}
