"""The .deb loader on real Debian packages and on packages built here with dpkg-deb."""

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile

import crafted_deb
import pytest
from loader_support import download_debs, need

from cerebro.binread import FormatError
from cerebro.loaders import limits
from cerebro.loaders.ar import read_ar
from cerebro.loaders.cli import main as cli_main
from cerebro.loaders.deb import read_deb
from cerebro.loaders.tar import file_digests, read_tar


def test_hello_info_verify_run(debian_debs, tmp_path, capfd):
    pkg = read_deb(debian_debs["hello"].read_bytes())
    info = pkg.info()
    assert info["package"] == "hello" and info["architecture"] == "amd64"
    assert "usr/bin/hello" in info["files"] and pkg.control["Description"].startswith("example package")
    assert pkg.verify() == []
    listed = subprocess.run(["dpkg-deb", "-c", str(debian_debs["hello"])], capture_output=True, text=True).stdout
    assert sorted(f.removeprefix("./").rstrip("/") for f in (line.split()[5] for line in listed.splitlines())
                  if f.removeprefix("./").rstrip("/")) == sorted(pkg.files())
    assert cli_main(["pkg", "run", str(debian_debs["hello"]), "--", "-g", "Ahoy"]) == 0
    assert cli_main(["pkg", "run", str(debian_debs["hello"])]) == 0
    assert capfd.readouterr().out == "Ahoy\nHello, world!\n"


def test_maintainer_scripts_reported_not_run(debian_debs, tmp_path):
    pkg = read_deb(debian_debs["base-passwd"].read_bytes())
    assert "postinst" in pkg.scripts and pkg.scripts["postinst"].startswith("#!")
    assert pkg.verify() == []
    names = pkg.extract(tmp_path / "x")
    assert (tmp_path / "x" / "usr/sbin/update-passwd").is_file() and (tmp_path / "x/DEBIAN/postinst").is_file()
    assert "usr/sbin/update-passwd" in names


def build_deb(tmp_path, compression="xz", tamper=False, name="demo"):
    need("dpkg-deb")
    root = tmp_path / f"pkg-{compression}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    script = '#!/bin/sh\necho "demo says: $*"\ncat "$DPKG_ROOT/postinst-ran" 2>/dev/null\nexit 0\n'
    (root / "usr/bin" / name).write_text(script)
    (root / "usr/bin" / name).chmod(0o755)
    (root / "etc/demo.conf").write_text("x = 1\n")
    (root / "DEBIAN/control").write_text(f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\n"
                                         "Maintainer: T <t@example.org>\nDescription: demo\n two lines\n")
    (root / "DEBIAN/conffiles").write_text("/etc/demo.conf\n")
    (root / "DEBIAN/postinst").write_text('#!/bin/sh\necho "$1" > "$DPKG_ROOT/postinst-ran"\n')
    (root / "DEBIAN/postinst").chmod(0o755)
    md5 = {p: hashlib.md5((root / p).read_bytes()).hexdigest() for p in (f"usr/bin/{name}", "etc/demo.conf")}
    if tamper:
        md5["etc/demo.conf"] = "0" * 32
    (root / "DEBIAN/md5sums").write_text("".join(f"{d}  {p}\n" for p, d in md5.items()))
    out = tmp_path / f"{name}-{compression}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Z", compression, "-b", str(root), str(out)],
                   check=True, capture_output=True)
    return out


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd", "none"])
def test_built_deb_all_compressions(tmp_path, compression, capfd):
    path = build_deb(tmp_path, compression)
    pkg = read_deb(path.read_bytes())
    assert pkg.control["Description"] == "demo\ntwo lines"
    assert pkg.conffiles == ["/etc/demo.conf"] and list(pkg.scripts) == ["postinst"]
    assert pkg.data_compression == {"gzip": "gz", "xz": "xz", "zstd": "zst", "none": ""}[compression]
    assert pkg.verify() == []
    assert pkg.run(["a", "b"]).returncode == 0
    assert capfd.readouterr().out == "demo says: a b\n"


def test_scripts_run_only_when_asked(tmp_path, capfd):
    pkg = read_deb(build_deb(tmp_path).read_bytes())
    assert pkg.run([], program="demo").returncode == 0
    assert capfd.readouterr().out == "demo says: \n"
    assert pkg.run([], program="usr/bin/demo", scripts=True).returncode == 0
    assert capfd.readouterr().out == "demo says: \nconfigure\n"
    with pytest.raises(FormatError, match="not in the package"):
        pkg.run([], program="nosuch")


def test_verify_detects_tampering(tmp_path, capfd):
    path = build_deb(tmp_path, tamper=True)
    assert read_deb(path.read_bytes()).verify() == ["etc/demo.conf: md5sum mismatch"]
    assert cli_main(["pkg", "verify", str(path)]) == 1
    assert "md5sum mismatch" in capfd.readouterr().err


def rebuild_with_data(deb: bytes, data_tar: bytes, name="data.tar.gz") -> bytes:
    return crafted_deb.ar_archive([(name, data_tar) if m.name.startswith("data.tar") else (m.name, m.data)
                                   for m in read_ar(deb)])


def hostile_tar(kind: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo({"traversal": "./../../etc/evil", "absolute": "/etc/evil"}.get(kind, "./usr/x"))
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        elif kind == "device":
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        tf.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink", "device"])
def test_extract_refuses_escapes(tmp_path, kind, capfd):
    deb = rebuild_with_data(build_deb(tmp_path).read_bytes(), hostile_tar(kind))
    (tmp_path / "bad.deb").write_bytes(deb)
    with pytest.raises(FormatError, match="outside|traversal|absolute|device"):
        read_deb(deb).extract(tmp_path / "out")
    assert cli_main(["pkg", "extract", str(tmp_path / "bad.deb"), str(tmp_path / "out2")]) == 2
    err = capfd.readouterr().err
    assert err.startswith("cerebroc pkg: error:") and err.count("\n") == 1
    assert not (tmp_path / "etc").exists()


def test_tar_bomb_stops_at_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_UNPACKED", 1 << 20)
    bomb = gzip.compress(b"\0" * (8 << 20), compresslevel=1)
    deb = rebuild_with_data(build_deb(tmp_path).read_bytes(), bomb)
    with pytest.raises(FormatError, match="bomb"):
        read_deb(deb)


def test_corrupt_and_truncated(tmp_path):
    good = build_deb(tmp_path).read_bytes()
    for n in range(0, len(good), 97):
        with pytest.raises(FormatError):
            read_deb(good[:n])
    with pytest.raises(FormatError, match="debian-binary"):
        read_deb(b"!<arch>\n")
    bad = bytearray(good)
    bad[8 + 48:8 + 58] = b"9999999999"
    with pytest.raises(FormatError, match="past the end"):
        read_deb(bytes(bad))


def test_cli_info_json_and_errors(debian_debs, tmp_path, capfd):
    import json
    assert cli_main(["pkg", "info", "--json", str(debian_debs["hello"])]) == 0
    assert json.loads(capfd.readouterr().out)["package"] == "hello"
    assert cli_main(["pkg", "info", str(debian_debs["hello"])]) == 0
    assert "package: hello" in capfd.readouterr().out
    (tmp_path / "junk").write_bytes(b"nothing")
    assert cli_main(["pkg", "info", str(tmp_path / "junk")]) == 2
    assert cli_main(["pkg", "info", str(tmp_path / "missing")]) == 2
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("cerebroc pkg: error:") for line in err)


@pytest.mark.parametrize("form", ["ustar", "gnu", "pax"])
def test_tar_reader_agrees_with_tarfile(form):
    """The streaming reader against the standard library on every header form dpkg and Python write:
    ustar prefixes, GNU long names/links, pax paths/linkpaths; contents streamed in pieces."""
    long_dir = "usr/share/" + "d" * 90 + "/" + "e" * 60
    long_link = "t" * (90 if form == "ustar" else 200)  # ustar link names stop at 100 bytes
    entries = [crafted_deb.dir_entry(long_dir + "/"), crafted_deb.file_entry(f"{long_dir}/file", b"x" * 70000, 0o640),
               crafted_deb.file_entry("short", b"x" * 70000), crafted_deb.link_entry(f"{long_dir}/hard", "short", True),
               crafted_deb.link_entry("usr/sym", long_link), crafted_deb.file_entry("empty", b"")]
    buf = io.BytesIO()
    formats = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}
    with tarfile.open(fileobj=buf, mode="w:xz", format=formats[form]) as tf:
        for info, body in entries:
            tf.addfile(info, io.BytesIO(body))
    ours = read_tar("t.tar.xz", buf.getvalue(), keep_data=True)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        theirs = [(i.name.rstrip("/"), i.mode, i.linkname, tf.extractfile(i).read() if i.isfile() else None)
                  for i in tf.getmembers()]
    assert [(m.name, m.mode, m.linkname, m.data) for m in ours] == theirs
    assert file_digests("t.tar.xz", buf.getvalue())[f"{long_dir}/hard"] == hashlib.md5(b"x" * 70000).hexdigest()


# -- hostile extraction (issue #10 item 8): crafted by crafted_deb.py, victims outside the target --

def write_crafted(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def no_escaping_links(top) -> bool:
    """True when nothing under top is a symlink that resolves outside it."""
    top = top.resolve()
    links = [p for p in top.rglob("*") if p.is_symlink()] if top.exists() else []
    return all(p.resolve() == top or top in p.resolve().parents for p in links)


def test_hardlink_through_symlink_chain_stays_inside(tmp_path, monkeypatch, capfd):
    victim = tmp_path / "victim"
    victim.write_text("original\n")
    deb = write_crafted(tmp_path, "chain.deb", crafted_deb.hardlink_through_chain(ups=1))
    assert cli_main(["pkg", "extract", str(deb), str(tmp_path / "out")]) == 2
    assert "outside" in capfd.readouterr().err
    assert victim.read_text() == "original\n" and no_escaping_links(tmp_path / "out")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # pkg run's root is tmp_path/cerebro-deb-X/root
    with pytest.raises(FormatError, match="outside"):
        read_deb(crafted_deb.hardlink_through_chain(ups=2)).run([])
    assert victim.read_text() == "original\n"


def test_debian_member_link_keeps_control_files_inside(tmp_path):
    with pytest.raises(FormatError):
        read_deb(crafted_deb.debian_dir_link(ups=1, outside="elsewhere")).extract(tmp_path / "out")
    assert not (tmp_path / "elsewhere").exists() and no_escaping_links(tmp_path / "out")


def test_directory_member_never_chmods_through_a_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    outside.chmod(0o700)
    with pytest.raises(FormatError):
        read_deb(crafted_deb.chmod_through_link(ups=1, outside="outside")).extract(tmp_path / "out")
    assert outside.stat().st_mode & 0o7777 == 0o700


def test_refused_extraction_leaves_nothing(tmp_path):
    with pytest.raises(FormatError, match="fifo"):
        read_deb(crafted_deb.refused_after_links(ups=1)).extract(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


# -- fidelity (item 9) --

def test_hard_links_modes_and_setuid(tmp_path):
    pkg = read_deb(crafted_deb.hardlinks_and_modes())
    assert pkg.verify() == []
    pkg.extract(tmp_path / "out")
    out = tmp_path / "out"
    inodes = {(out / "bin" / n).stat().st_ino for n in ("bunzip2", "bzcat", "bzip2")}
    assert len(inodes) == 1 and (out / "bin/bzcat").stat().st_nlink == 3
    modes = {p: (out / p).stat().st_mode & 0o7777 for p in ("var/cache/ldconfig", "ro", "ro/f", "bin/suid", "bin")}
    assert modes == {"var/cache/ldconfig": 0o700, "ro": 0o555, "ro/f": 0o444, "bin/suid": 0o755, "bin": 0o755}


@pytest.fixture(scope="module")
def fidelity_debs() -> dict:
    """bzip2 (a hard-link group in md5sums) and libc-bin (var/cache/ldconfig is 0700)."""
    return download_debs("bzip2", "libc-bin")


def tree(root) -> tuple[dict, list]:
    """Every entry under root (kind, mode, contents digest or link target as resolved text) and the
    hard-link groups: what extraction must reproduce."""
    entries, inodes = {}, {}
    for path in sorted(root.rglob("*")):
        rel, st = str(path.relative_to(root)), path.lstat()
        if path.is_symlink():
            target = os.readlink(path)
            entries[rel] = ("link", target.lstrip("/") if target.startswith("/")
                            else os.path.normpath(os.path.join(os.path.dirname(rel), target)))
        elif path.is_dir():
            entries[rel] = ("dir", st.st_mode & 0o1777)
        else:
            entries[rel] = ("file", st.st_mode & 0o777, hashlib.md5(path.read_bytes()).hexdigest())
            inodes.setdefault(st.st_ino, []).append(rel)
    return entries, sorted(group for group in inodes.values() if len(group) > 1)


def test_real_packages_extract_as_dpkg_does(fidelity_debs, tmp_path):
    """bzip2's hard-link group verifies and stays one inode; libc-bin's 0700 directory stays 0700;
    everything else matches `dpkg-deb -x` too (no setuid files in these two)."""
    need("dpkg-deb")
    for name, path in fidelity_debs.items():
        pkg = read_deb(path.read_bytes())
        assert pkg.verify() == []
        pkg.extract(tmp_path / name, with_control=False)
        subprocess.run(["dpkg-deb", "-x", str(path), str(tmp_path / f"{name}.dpkg")], check=True)
        assert tree(tmp_path / name) == tree(tmp_path / f"{name}.dpkg")
    assert ["bin/bunzip2", "bin/bzcat", "bin/bzip2"] in tree(tmp_path / "bzip2")[1]
    assert (tmp_path / "libc-bin/var/cache/ldconfig").stat().st_mode & 0o7777 == 0o700


# -- memory (item 10): peak RSS of `cerebroc pkg` on bombs, measured in a fresh process --

PEAK_RSS = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(proc.stderr.strip())
"""


def peak_rss(*argv: str) -> tuple[int, int, str]:
    """(exit status, peak RSS in bytes, stderr) of `cerebroc pkg ARGV` (its largest process)."""
    cerebroc = [sys.executable, "-c", "import sys; from cerebro.loaders.cli import main; sys.exit(main())"]
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, *cerebroc, "pkg", *argv],  # timeout: quadratic parsers
                         capture_output=True, text=True, check=True, timeout=120).stdout.split("\n", 1)
    status, kib = map(int, out[0].split())
    return status, kib << 10, out[1].strip()


@pytest.mark.parametrize("bomb", ["sparse", "long-name", "md5sums", "control", "gz", "xz", "zst"])
def test_memory_bounded_on_bombs(tmp_path, bomb):
    """Refused in one line (the control bomb, 15 MiB of one field, is valid: parsed in linear time)."""
    if bomb == "zst":
        need("zstd")
    makers = {"sparse": crafted_deb.sparse_bomb, "long-name": crafted_deb.long_name_bomb,
              "md5sums": crafted_deb.md5sums_bomb, "control": crafted_deb.control_bomb}
    data = makers[bomb]() if bomb in makers else crafted_deb.decompression_bomb(bomb)
    path = write_crafted(tmp_path, f"{bomb}.deb", data)
    status, rss, err = peak_rss("info", str(path))
    assert rss < 256 << 20, f"pkg info peaked at {rss >> 20} MiB"
    if bomb == "control":
        assert status == 0, err
    else:
        assert status == 2 and err.startswith("cerebroc pkg: error:") and err.count("\n") == 0


def test_memory_bounded_extracting_a_large_file(tmp_path):
    path = write_crafted(tmp_path, "large.deb", crafted_deb.large_file(160 << 20))
    status, rss, err = peak_rss("extract", str(path), str(tmp_path / "out"))
    assert status == 0, err
    assert rss < 256 << 20, f"pkg extract peaked at {rss >> 20} MiB"
    assert (tmp_path / "out/big").stat().st_size == 160 << 20
