"""Bundled declarative search spaces (``*.yaml``), shipped as package data.

A sweep spec names one of them (``search_space: adam`` loads ``adam.yaml``);
:func:`tuner.load_search_space` parses and validates it.
"""
