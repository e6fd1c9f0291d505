"""System properties and the environment (System.getProperty/setProperty/clearProperty, getenv): the
standard keys a program asks for, with the values docs/loaders.md lists. Host facts (os.name, user.dir,
user.home, user.name) are what java reports on the same machine; the runtime's own names say what runs the
program (Cerebro, Java 17 class files), not a JDK it is not. Each VM gets its own copy, so setProperty in
one program is not seen by the next."""

from __future__ import annotations

import os
import platform
import pwd
from collections.abc import Callable

from cerebro.loaders.dexlib_lang import throw

S = "Ljava/lang/String;"
# Python's machine names -> the JVM's os.arch
OS_ARCH = {"x86_64": "amd64", "i686": "i386", "i386": "i386", "aarch64": "aarch64", "armv7l": "arm"}


def _user() -> tuple[str, str]:
    """(user.name, user.home) from the password database, as the JVM takes them ('?' when there is no entry)."""
    try:
        entry = pwd.getpwuid(os.getuid())
    except KeyError:
        return "?", "?"
    return entry.pw_name, entry.pw_dir


def _language() -> str:
    """user.language from the POSIX locale variables (the JVM's rule: C/POSIX or unset is English)."""
    value = os.environ.get("LC_ALL") or os.environ.get("LC_MESSAGES") or os.environ.get("LANG") or "C"
    code = value.split("_")[0].split(".")[0]
    return code if code.isalpha() and code.islower() and len(code) in (2, 3) else "en"


def standard_properties() -> dict[str, str]:
    name, home = _user()
    machine = platform.machine()
    return {
        "java.version": "17", "java.specification.version": "17", "java.vm.specification.version": "17",
        "java.class.version": "61.0", "java.vendor": "Cerebro", "java.vm.vendor": "Cerebro",
        "java.vm.name": "Cerebro class-file/dex interpreter", "java.runtime.name": "Cerebro",
        "java.specification.name": "Java Platform API Specification",
        "java.specification.vendor": "Oracle Corporation", "os.name": platform.system(),
        "os.arch": OS_ARCH.get(machine, machine), "os.version": platform.release(), "file.separator": "/",
        "path.separator": ":", "line.separator": "\n", "file.encoding": "UTF-8", "native.encoding": "UTF-8",
        "sun.jnu.encoding": "UTF-8", "java.io.tmpdir": "/tmp", "user.dir": os.getcwd(), "user.home": home,
        "user.name": name, "user.language": _language(), "sun.arch.data.model": "64" if "64" in machine else "32",
        "sun.cpu.endian": "little"}


def _properties(vm) -> dict[str, str]:
    if getattr(vm, "system_properties", None) is None:
        vm.system_properties = standard_properties()
    return vm.system_properties


def _key(key) -> str:
    """System.checkKey's rule, with its messages."""
    if key is None:
        throw("java.lang.NullPointerException", "key can't be null")
    if key == "":
        throw("java.lang.IllegalArgumentException", "key can't be empty")
    return key


def _set(vm, key, value):
    if value is None:
        throw("java.lang.NullPointerException")
    vm.allocate(len(_key(key)) + len(value) + 64)
    previous = _properties(vm).get(key)
    _properties(vm)[key] = value
    return previous


def _getenv(vm, name):
    if name is None:
        throw("java.lang.NullPointerException")
    return os.environ.get(name)


_SYSTEM = "Ljava/lang/System;"
NATIVES: dict[str, Callable] = {
    f"{_SYSTEM}->getProperty({S}){S}": lambda vm, key: _properties(vm).get(_key(key)),
    f"{_SYSTEM}->getProperty({S}{S}){S}": lambda vm, key, default: _properties(vm).get(_key(key), default),
    f"{_SYSTEM}->setProperty({S}{S}){S}": _set,
    f"{_SYSTEM}->clearProperty({S}){S}": lambda vm, key: _properties(vm).pop(_key(key), None),
    f"{_SYSTEM}->getenv({S}){S}": _getenv,
    "Ljava/lang/Boolean;->getBoolean(Ljava/lang/String;)Z":
        lambda vm, key: int(bool(key) and str(_properties(vm).get(key)).lower() == "true"),
}
METHODS: dict[type, dict[str, Callable]] = {}
STATIC_FIELDS: dict[tuple[str, str], Callable] = {  # java.io.File's separators, as its <clinit> sets them
    ("Ljava/io/File;", "separator"): lambda vm: "/", ("Ljava/io/File;", "separatorChar"): lambda vm: ord("/"),
    ("Ljava/io/File;", "pathSeparator"): lambda vm: ":", ("Ljava/io/File;", "pathSeparatorChar"): lambda vm: ord(":")}
NATIVE_CLASSES: dict[str, Callable] = {}
