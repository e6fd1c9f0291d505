"""Package loaders (.deb, .exe, .apk).

Import the module you need (cerebro.loaders.deb, .pe, .apk, ...): nothing is imported eagerly.
They read ELF with cerebro/elf.py and bytes with cerebro/binread.py (FormatError), the base they
share with the .cbx format (compiler/cbx), which must not depend on loaders.
"""
