#!/usr/bin/env python3
"""Holds gatewayd's sources to their floors (docs/architecture.md): a file may include headers
of its own area and of the areas below it, never of one above. Every build runs it with the
floors meson.build links in (one static library each); a violation fails the build with
FILE:LINE: message.

usage: check_layers.py SOURCE_ROOT STAMP FLOOR...
  FLOOR: a folder or file relative to SOURCE_ROOT, from the ground up
  STAMP is written when every file under gateway/ and plugins/ is in a floor and sees only its
  own floor and the ones below it.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def floor_of(path, floors):
    """The index in `floors` of the area holding `path` (relative to the root), or None."""
    for index, area in enumerate(floors):
        if path == area or path.startswith(area + "/"):
            return index
    return None


def violations(root, floors):
    found = []
    for top in ("gateway", "plugins"):
        for directory, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                # Unit tests sit beside their unit but belong to the test binary, which may use
                # any floor (and the test support code).
                if not name.endswith((".h", ".cpp", ".in")) or name.endswith("_test.cpp"):
                    continue
                path = os.path.relpath(os.path.join(directory, name), root)
                floor = floor_of(path, floors)
                if floor is None:
                    found.append(f"{path}:1: in no floor (meson.build lists them)")
                    continue
                with open(os.path.join(root, path), encoding="utf-8") as source:
                    for number, line in enumerate(source, 1):
                        match = INCLUDE.match(line)
                        if not match:
                            continue
                        target = floor_of(match.group(1), floors)
                        if target is not None and target > floor:
                            found.append(
                                f"{path}:{number}: includes {match.group(1)}: "
                                f"{floors[floor]} may not see {floors[target]}, a floor above it"
                            )
    return found


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    root, stamp, floors = sys.argv[1], sys.argv[2], sys.argv[3:]
    found = violations(root, floors)
    for message in found:
        print(message, file=sys.stderr)
    if found:
        sys.exit(1)
    with open(stamp, "w", encoding="utf-8") as out:
        out.write("floors hold\n")


if __name__ == "__main__":
    main()
