"""Readers and writers for nanoBragg's files: float/PGM/PNG images, SMV images, HKL tables and their
binary cache, MOSFLM matrices and source lists. Bad input raises :class:`nanobrag.errors.InputError`.
"""
