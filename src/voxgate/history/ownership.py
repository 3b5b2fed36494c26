"""Which process holds a live session record: ``<instance_id>|<pid>|<start nonce>``.

The nonce tells this process from an earlier one with the same pid (a restarted container's pid 1).
A record whose owner runs on this instance but is not this process and whose pid is gone (or is this
process's pid with another nonce) is an orphan at once; records of other instances become orphans when
their lease runs out.
"""

from __future__ import annotations

import os
import secrets

_NONCE = secrets.token_hex(6)


def owner_token(instance_id: str) -> str:
    return f"{instance_id[:120]}|{os.getpid()}|{_NONCE}"


def owner_is_dead(owner: str, instance_id: str) -> bool:
    """Whether ``owner`` is a process of this instance that no longer runs (False when unknown)."""
    host, _, rest = owner.partition("|")
    pid_text, _, nonce = rest.partition("|")
    if host != instance_id[:120] or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return nonce != _NONCE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
