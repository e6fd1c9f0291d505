"""Safety limits shared by every loader: hostile input hits one of these, never memory exhaustion."""

MAX_INPUT = 1 << 30  # largest package file read at all
MAX_UNPACKED = 512 << 20  # total bytes one archive may decompress to (zip/tar bombs stop here)
MAX_MEMBER = 256 << 20  # largest single archive member
MAX_ENTRIES = 200_000  # archive members
MAX_RATIO = 1000  # zip: uncompressed/compressed ratio beyond which a member is refused as a bomb
MAX_CONTROL = 16 << 20  # a .deb's control.tar, decompressed: its files are held in memory
MAX_HEADER_EXTENSION = 1 << 20  # one tar GNU long-name or pax header (read whole)
MAX_NAME_BYTES = 32 << 20  # all member names and link targets of one tar (kept for `info`)
MAX_DECODER_MEMORY = 96 << 20  # xz/zstd window: every xz preset (-9: 64 MiB) and zstd level fits
