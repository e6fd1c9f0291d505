"""Suite-wide setup: tests never read or fill the user's compile cache.

The persistent compile cache is off for the whole session (so every test exercises the real compiler) and
points at a private temporary directory; tests of the cache itself opt in with CEREBRO_COMPILE_CACHE=1 and a
directory of their own (tests/test_compile_cache.py).
"""

import os
import shutil
import tempfile

_SESSION_CACHE = tempfile.mkdtemp(prefix="cerebro-test-compile-cache-")
os.environ["CEREBRO_CACHE_DIR"] = _SESSION_CACHE
os.environ["CEREBRO_COMPILE_CACHE"] = "0"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)
