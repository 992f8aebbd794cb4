#!/usr/bin/env python3
"""The configuration the Debian package installs as /etc/m2mguard/m2mguard.toml, made from the
annotated config/m2mguard.toml so that there is one annotated file: the repository under
/var/lib/m2mguard/gateway, the policies under /etc/m2mguard/policies, and the example nodes
commented out (an installed gateway knows nobody until the operator enrols its nodes, so every
request is refused: fail closed).

Usage:  packaged_config.py SOURCE DEST      (exit 1, writing nothing, if SOURCE changed shape)
"""

import sys
from pathlib import Path

REPLACE = [
    ('data_dir = "target/m2mguard"   # sled repository and other state',
     'data_dir = "/var/lib/m2mguard/gateway"  # sled repository and other state'),
    ('dir = "policies"               #',
     'dir = "/etc/m2mguard/policies" #'),
]
NODES_FROM = "[[nodes]]"
NODES_UNTIL = "# Message checks"
HEADER = ("# Installed by the m2mguard package. A conffile: an upgrade keeps your changes.\n"
          "# Check it:  m2mguard check --config /etc/m2mguard/m2mguard.toml\n")


def main(source, dest):
    text = Path(source).read_text()
    for old, new in REPLACE:
        if text.count(old) != 1:
            sys.exit(f"{source}: expected {old!r} exactly once")
        text = text.replace(old, new)
    start = text.find("\n" + NODES_FROM)
    end = text.find("\n" + NODES_UNTIL)
    if start < 0 or end < start:
        sys.exit(f"{source}: no {NODES_FROM} block before {NODES_UNTIL!r}")
    block = text[start + 1:end + 1]
    commented = "".join(line if line.startswith("#") or not line.strip() else "# " + line
                        for line in block.splitlines(keepends=True))
    text = text[:start + 1] + commented + text[end + 1:]
    Path(dest).write_text(HEADER + text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
