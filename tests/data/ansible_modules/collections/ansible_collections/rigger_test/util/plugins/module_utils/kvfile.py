# A collection's module_utils for rigger's test of Ansible modules
# (tests/it/ansible_modules.rs): reads and writes KEY=VALUE files.
from __future__ import annotations

import os


def read_pairs(path):
    """The file's lines as (key, value) pairs, in order; [] when it is missing."""
    if not os.path.exists(path):
        return []
    pairs = []
    with open(path) as f:
        for line in f.read().splitlines():
            key, _, value = line.partition('=')
            pairs.append((key, value))
    return pairs


def render(pairs):
    return ''.join('%s=%s\n' % kv for kv in pairs)
