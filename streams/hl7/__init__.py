"""HL7 v2 in: hospital messages (ADT, MDM, ORU, ZAM) converted into contract v1 events.

parsing     bytes → a parsed message (charset from MSH-18, separators, MSH checks)
cda         the base64 CDA of a document OBX: id, level, patient ids (defusedxml, no network)
mapping     the mapping configuration (TOML): facilities, identities, stay kinds, time zone
conversion  a parsed message → events, with the state that links ADT, documents and ZAMs
"""
