"""Package loaders (.deb, .exe, .apk) and the project's one ELF reader.

Import the module you need (cerebro.loaders.elf, .deb, .pe, .apk, ...): nothing is imported
eagerly, so `cerebro.loaders.elf` stays cheap for the runtime that validates .cbx objects.
"""
