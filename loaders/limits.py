"""Safety limits shared by every loader: hostile input hits one of these, never memory exhaustion."""

MAX_INPUT = 1 << 30  # largest package file read at all
MAX_UNPACKED = 512 << 20  # total bytes one archive may decompress to (zip/tar bombs stop here)
MAX_MEMBER = 256 << 20  # largest single archive member
MAX_ENTRIES = 200_000  # archive members
MAX_RATIO = 1000  # zip: uncompressed/compressed ratio beyond which a member is refused as a bomb
