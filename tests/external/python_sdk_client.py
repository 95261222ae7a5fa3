#!/usr/bin/env python3
"""Drives scout-mcp with the official MCP Python SDK (PyPI `mcp`), a client this project did
not write, and prints what the SDK made of each answer as one JSON object per line.

    python_sdk_client.py SCOUT_MCP_BINARY HOST:/PATH/TO/FILE [--era handshake|modern|both]

For each protocol era it starts the server through the SDK's `stdio_client`, connects a
`ClientSession` (`initialize()` for the handshake era that today's desktop clients use,
`discover()` for the stateless 2026-07-28 revision), then lists tools and resources, reads
the file through the `scout` tool, reads `hosts://list`, and runs `wc -c` on the file in its
directory. The Rust test tests/external_client.rs asserts on the printed JSON; run by hand
against your own hosts it is a smoke test of an install (it only reads, and runs `wc`).

The SDK passes the server only HOME, LOGNAME, PATH, SHELL, TERM and USER from its own
environment, as Claude Desktop and other SDK-based clients do; everything else must be given
as the server's `env`. So SCOUT_*, RUST_LOG and SSH_AUTH_SOCK are forwarded explicitly here.
"""

import argparse
import asyncio
import json
import os
import posixpath
import shlex
import sys

try:
    from mcp import ClientSession, StdioServerParameters, stdio_client
except ImportError as error:  # the test turns this exit code into "run make test-deps"
    print(
        f"the MCP Python SDK is not importable by {sys.executable} ({error}); "
        "install it with `make test-deps` (a venv in target/mcp-venv)",
        file=sys.stderr,
    )
    sys.exit(3)

# One call must not hang the run: the Rust side bounds the whole process too, but a timeout
# here names the step that stalled.
STEP_TIMEOUT = 60.0

FORWARDED_PREFIXES = ("SCOUT_",)
FORWARDED_NAMES = ("RUST_LOG", "SSH_AUTH_SOCK")


def server_env():
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith(FORWARDED_PREFIXES) or name in FORWARDED_NAMES
    }


def split_target(target):
    host, sep, path = target.partition(":")
    if not sep or not host or not path.startswith("/"):
        sys.exit(f"target must look like host:/absolute/path, got {target!r}")
    return host, path


def text_of(content):
    return "".join(block.text for block in content if getattr(block, "type", None) == "text")


async def step(name, awaitable):
    try:
        return await asyncio.wait_for(awaitable, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise RuntimeError(f"{name}: no answer from scout-mcp within {STEP_TIMEOUT} s") from None


async def connect(session, era):
    if era == "handshake":
        result = await step("initialize", session.initialize())
        return result.protocol_version, result.server_info.name
    result = await step("server/discover", session.discover())
    return session.protocol_version, session.server_info.name if session.server_info else None


async def exercise(binary, target, era):
    host, path = split_target(target)
    directory, filename = posixpath.split(path)
    params = StdioServerParameters(command=binary, args=[], env=server_env())
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            version, server_name = await connect(session, era)
            tools = await step("tools/list", session.list_tools())
            resources = await step("resources/list", session.list_resources())
            read_file = await step(
                "tools/call read", session.call_tool("scout", {"target": target})
            )
            hosts = await step("resources/read hosts://list", session.read_resource("hosts://list"))
            command = await step(
                "tools/call command",
                session.call_tool(
                    "scout",
                    {"target": f"{host}:{directory}", "query": f"wc -c < {shlex.quote(filename)}"},
                ),
            )
    return {
        "era": era,
        "sdk_version": sdk_version(),
        "protocol_version": version,
        "server_name": server_name,
        "tools": [
            {"name": t.name, "input_schema": t.input_schema, "output_schema": t.output_schema}
            for t in tools.tools
        ],
        "resources": [str(r.uri) for r in resources.resources],
        "read": {"is_error": read_file.is_error, "text": text_of(read_file.content)},
        "hosts_list": [
            {"uri": str(c.uri), "mime_type": c.mime_type, "text": getattr(c, "text", None)}
            for c in hosts.contents
        ],
        "command": {
            "is_error": command.is_error,
            "text": text_of(command.content),
            "structured": command.structured_content,
        },
    }


def sdk_version():
    from importlib.metadata import version

    return version("mcp")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", help="the scout-mcp executable")
    parser.add_argument("target", help="host:/path of a small text file to read")
    parser.add_argument("--era", choices=("handshake", "modern", "both"), default="both")
    args = parser.parse_args()
    eras = ("handshake", "modern") if args.era == "both" else (args.era,)
    for era in eras:
        report = asyncio.run(exercise(args.binary, args.target, era))
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
