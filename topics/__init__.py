"""The event contract v1 (names, records, validation, JSON Schemas): imports nothing of ours.

Imports go one way: names, errors, display → fields → records → schema, validation.
"""
