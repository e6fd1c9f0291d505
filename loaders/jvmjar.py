"""JAR files (and a lone .class file) as packages: info, verify, extract and run `main(String[])`
of the manifest's Main-Class (or --main) on the JVM front end of the dex interpreter (jvmvm)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from cerebro.binread import FormatError
from cerebro.loaders.archive import FILE, extract
from cerebro.loaders.classfile import JvmClass, parse_class
from cerebro.loaders.dex import class_descriptor
from cerebro.loaders.dexvm import main_method
from cerebro.loaders.jarsig import verify_v1
from cerebro.loaders.zipread import ZipArchive, read_zip

MANIFEST = "META-INF/MANIFEST.MF"
MAX_RELEASE = 17  # the Java version the front end stands for (class files up to 61)
JAVA_VERSIONS = {45: "1.1", 46: "1.2", 47: "1.3", 48: "1.4", 49: "5", 50: "6", 51: "7", 52: "8"}


def manifest_attributes(text: str) -> dict[str, str]:
    """The main section of a JAR manifest: `Name: value` lines, a line starting with a space continuing the last."""
    out: dict[str, str] = {}
    last = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            break  # the main section ends at the first blank line
        if line.startswith(" ") and last is not None:
            out[last] += line[1:]
        elif ":" in line:
            last, value = line.split(":", 1)
            out[last] = value.strip()
    return out


@dataclass
class JarPackage:
    zip: ZipArchive | None  # None: a lone class file
    classes: dict[str, JvmClass]  # descriptor -> class
    manifest: dict[str, str]

    run_options = ("main",)

    @property
    def main_class(self) -> str | None:
        return self.manifest.get("Main-Class")

    def runnable(self) -> list[str]:
        return sorted(c.java_name for c in self.classes.values() if main_method(c) is not None)

    def info(self) -> dict:
        majors = sorted({c.version[0] for c in self.classes.values()})
        return {"format": "jar" if self.zip is not None else "class", "main_class": self.main_class,
                "class_versions": [f"{m} (Java {JAVA_VERSIONS.get(m, m - 44)})" for m in majors],
                "classes": sorted(c.java_name for c in self.classes.values()),
                "classes_with_main": self.runnable(),
                "manifest": self.manifest}

    def verify(self) -> list[str]:
        """The v1 (JAR) signature, when the JAR is signed: every entry's digest and the signer's signature."""
        return verify_v1(self.zip, set())[0] if self.zip is not None else []

    def extract(self, dest: str | os.PathLike) -> list[str]:
        if self.zip is None:
            raise FormatError("class: a class file has nothing to extract")
        return extract(self.zip.members, dest, "jar")

    def run(self, args: list[str], main: str | None = None, **_options) -> subprocess.CompletedProcess:
        from cerebro.loaders.jvmvm import run_classes
        cls = main or self.main_class or (self.runnable()[0] if self.zip is None and self.runnable() else None)
        if not cls and self.zip is None:
            raise FormatError(f"class: {self.info()['classes'][0]} has no static main(String[])")
        if not cls:
            raise FormatError("jar: no Main-Class in META-INF/MANIFEST.MF; " + self._choices())
        if class_descriptor(cls) not in self.classes:
            raise FormatError(f"jar: class {cls} is not in the jar; " + self._choices())
        status = run_classes(list(self.classes.values()), cls, args)
        return subprocess.CompletedProcess(["jvm", cls, *args], status)

    def _choices(self) -> str:
        names = self.runnable()
        if not names:
            return "no class in it has a static main(String[]) to run with --main CLASS"
        more = f" (and {len(names) - 5} more)" if len(names) > 5 else ""
        return f"classes with main(String[]): {', '.join(names[:5])}{more}; run one with --main CLASS"


def is_jar(data: bytes) -> bool:
    """A zip that is a JAR rather than an APK: no Android manifest, and a JAR manifest or class files."""
    return b"AndroidManifest.xml" not in data and (MANIFEST.encode() in data or b".class" in data)


def read_jar(data: bytes) -> JarPackage:
    """The JAR's classes; in a multi-release JAR, those of META-INF/versions/9..17 replace the base
    ones, the highest version last (what a Java 17 runtime loads)."""
    z = read_zip(data, "jar")
    manifest = z.get(MANIFEST)
    text = (manifest.data or b"").decode("utf-8", "replace") if manifest is not None and manifest.kind == FILE else ""
    attributes = manifest_attributes(text)
    layers: dict[int, list] = {}  # Java version (8: the base) -> class members
    for m in z.members:
        version = _release_of(m.name) if attributes.get("Multi-Release", "").lower() == "true" else None
        if m.kind == FILE and m.name.endswith(".class") and (version or not m.name.startswith("META-INF/")):
            layers.setdefault(version or 8, []).append(m)
    classes: dict[str, JvmClass] = {}
    for version in sorted(layers):
        for m in layers[version]:
            c = parse_class(m.data or b"", f"jar {m.name}")
            if version > 8 or c.name not in classes:
                classes[c.name] = c
    return JarPackage(z, classes, attributes)


def _release_of(name: str) -> int | None:
    """N for META-INF/versions/N/... with 9 <= N <= 17 (the versions a Java 17 runtime reads)."""
    parts = name.split("/")
    if len(parts) > 3 and parts[:2] == ["META-INF", "versions"] and parts[2].isdigit() and len(parts[2]) <= 2:
        return int(parts[2]) if 9 <= int(parts[2]) <= MAX_RELEASE else None
    return None


def read_class(data: bytes) -> JarPackage:
    c = parse_class(data)
    return JarPackage(None, {c.name: c}, {})
