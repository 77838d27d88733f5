"""`sunes hl7`: HL7 v2 in. `convert` turns message files into NDJSON events; `listen` (in
streams/cli/hl7_listen.py) receives them over MLLP and publishes them to Kafka."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from streams.cli.errors import CliError, Exit
from streams.cli.options import add_hl7_mapping_option

# A message starts with MSH at the start of the file or of a line; FHS/BHS/BTS/FTS (batch
# envelopes) are not messages.
_MESSAGE_START = re.compile(rb"(?:^|(?<=[\r\n]))MSH")
_ENVELOPE = re.compile(rb"(?:^|(?<=[\r\n]))(?:FHS|BHS|BTS|FTS)[^\r\n]*[\r\n]*")
_MLLP = (b"\x0b", b"\x1c")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hl7",
        help="HL7 v2 in: convert message files, or listen over MLLP",
        description="HL7 v2 (ADT, MDM, ORU, ZAM) into contract v1 events: docs/hl7.md.",
    )
    commands = parser.add_subparsers(dest="hl7_command", metavar="COMMAND")
    convert = commands.add_parser(
        "convert",
        help="convert HL7 v2 message files to NDJSON events",
        description="Convert each message of the files, in the order given (a ZAM finds the "
        "document message it answers in an earlier file), to contract v1 events, one JSON "
        "object a line, for `sunes report` or `sunes publish`. A file holds one message or "
        "several, each starting with MSH (CR, LF or CRLF separators; MLLP framing and batch "
        "envelopes are skipped). Refused and ignored messages are summed up on stderr with "
        "their reasons.",
        epilog=f"exit status: {Exit.OK} every message converted or ignored; "
        f"{Exit.INVALID_INPUT} some were refused (AE/AR), the others' events are written; "
        f"{Exit.USAGE} usage error (missing file, bad mapping).",
    )
    convert.add_argument("files", nargs="+", type=Path, metavar="FILE", help="HL7 v2 files")
    add_hl7_mapping_option(convert)
    convert.add_argument(
        "--output", "-o", type=Path, metavar="OUT.ndjson", help="write the events here, not stdout"
    )
    convert.set_defaults(handler=run_convert)
    if importlib.util.find_spec("streams.cli.hl7_listen") is not None:
        from streams.cli import hl7_listen

        hl7_listen.add_parser(commands)
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return Exit.USAGE


def split_messages(data: bytes) -> Iterator[bytes]:
    """The messages of one file's bytes."""
    data = _ENVELOPE.sub(b"", data.replace(_MLLP[0], b"\r").replace(_MLLP[1], b"\r"))
    starts = [m.start() for m in _MESSAGE_START.finditer(data)]
    if not starts or starts[0] != 0:
        starts = [0, *starts]  # bytes before the first MSH: the converter refuses them (no_msh)
    for begin, end in zip(starts, [*starts[1:], len(data)], strict=True):
        chunk = data[begin:end].strip(b" \t\r\n")
        if chunk:
            yield chunk


def run_convert(args: argparse.Namespace) -> int:
    from processors.store import MemoryStore
    from streams.hl7.conversion import Hl7Converter
    from streams.hl7.mapping import load_mapping

    for path in args.files:
        if not path.is_file():
            raise CliError(f"HL7 file {path} does not exist")
    converter = Hl7Converter(load_mapping(args.mapping), MemoryStore())
    output: BinaryIO = args.output.open("wb") if args.output else sys.stdout.buffer
    counts: Counter[str] = Counter()
    events = 0
    refusals: list[str] = []
    try:
        for path in args.files:
            for number, raw in enumerate(split_messages(path.read_bytes()), start=1):
                conversion = converter.convert(raw)
                for event in conversion.events:
                    output.write(orjson.dumps(event) + b"\n")
                events += len(conversion.events)
                if conversion.refused:
                    counts[f"refused {conversion.ack_code} {conversion.reason}"] += 1
                    where = f" ({conversion.location})" if conversion.location else ""
                    refusals.append(
                        f"{path}#{number}: {conversion.ack_code} {conversion.reason}{where}: "
                        f"{conversion.detail}"
                    )
                elif conversion.events:
                    counts["converted"] += 1
                else:
                    counts[f"ignored {conversion.reason}"] += 1
    finally:
        if args.output:
            output.close()
        else:
            output.flush()
    for line in refusals:
        print(line, file=sys.stderr)
    summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    print(f"{sum(counts.values())} message(s), {events} event(s): {summary}", file=sys.stderr)
    return Exit.INVALID_INPUT if refusals else Exit.OK
