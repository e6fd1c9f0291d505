"""Helpers shared by the loader tests (a uniquely named module: every tests/ folder has a conftest)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("CEREBRO_TEST_CACHE", Path.home() / ".cache" / "cerebro-tests"))
DATA = Path(__file__).parent / "data"
FRAMEWORK_RES = Path("/usr/share/android-framework-res/framework-res.apk")


def need(*programs: str) -> None:
    for program in programs:
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (see scripts/apt-packages.txt)")


def download_debs(*names: str) -> dict[str, Path]:
    """Debian packages by name via `apt-get download`, cached in CACHE/debs (pytest.skip when unavailable)."""
    need("apt-get")
    folder = CACHE / "debs"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        found = sorted(folder.glob(f"{name}_*.deb"))
        if not found:
            proc = subprocess.run(["apt-get", "download", "-q", name], cwd=folder, capture_output=True, text=True)
            found = sorted(folder.glob(f"{name}_*.deb"))
            if not found:
                pytest.skip(f"apt-get download {name} failed: {proc.stderr.strip()[-300:]}")
        out[name] = found[-1]
    return out


def build_apk(tmp: Path) -> Path:
    """A signed APK from the smali sources in data/: smali -> aapt package -> aapt add -> zipalign -> apksigner."""
    need("smali", "aapt", "zipalign", "apksigner", "keytool")
    if not FRAMEWORK_RES.exists():
        pytest.skip("android-framework-res is not installed")
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp, check=True, capture_output=True)  # noqa: E731
    run("smali", "assemble", "-o", "classes.dex", *map(str, sorted(DATA.glob("*.smali"))))
    run("aapt", "package", "-f", "-M", str(DATA / "AndroidManifest.xml"), "-I", str(FRAMEWORK_RES), "-F", "u.apk")
    members = ["classes.dex"]
    if shutil.which("aarch64-linux-gnu-gcc"):
        (tmp / "lib/arm64-v8a").mkdir(parents=True)
        (tmp / "foo.c").write_text("int foo(int x) { return x + 1; }\n")
        run("aarch64-linux-gnu-gcc", "-shared", "-fPIC", "-Wl,-soname,libfoo.so", "-o", "lib/arm64-v8a/libfoo.so",
            "foo.c")
        members.append("lib/arm64-v8a/libfoo.so")
    run("aapt", "add", "u.apk", *members)
    run("zipalign", "-f", "4", "u.apk", "aligned.apk")
    run("keytool", "-genkeypair", "-keystore", "ks.jks", "-storepass", "secret1", "-keypass", "secret1", "-alias", "k",
        "-keyalg", "EC", "-dname", "CN=cerebro-test", "-validity", "1000", "-noprompt")
    run("apksigner", "sign", "--ks", "ks.jks", "--ks-pass", "pass:secret1", "--out", "app.apk", "aligned.apk")
    return tmp / "app.apk"
