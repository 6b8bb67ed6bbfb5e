"""Bearer tokens with roles: where they come from, and how a request's token is checked.

Tokens are read from ``AIGUILLEUR_TOKENS`` (``role:token`` items separated by
commas or new lines) or from a file of ``role:token`` lines (``role:name:token``
names the holder in the log; ``#`` starts a comment). A token is never
printed: errors name the line, :class:`Principal` carries the holder's name.

A presented token is compared with every known one (SHA-256 digests compared
with :func:`hmac.compare_digest`, all of them, whatever matches): the time a
check takes does not depend on how much of a token was right.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiguilleur.errors import ValidationError

__all__ = ["ROLES", "Principal", "Tokens", "load_tokens", "token_file"]

ROLES = ("viewer", "operator")
MIN_TOKEN_CHARS = 16
MAX_TOKEN_FILE_BYTES = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the token holder's ``name`` and ``role``."""

    name: str
    role: str

    @property
    def can_write(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True)
class Tokens:
    """Known tokens, kept only as SHA-256 digests, each with its holder."""

    entries: tuple[tuple[bytes, Principal], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        for _, p in self.entries:
            if p.role not in ROLES:
                raise ValidationError(f"role: expected one of {', '.join(ROLES)}, got {p.role!r}")

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str, str]]) -> Tokens:
        """From ``(role, name, token)`` triples."""
        seen: set[bytes] = set()
        out = []
        for role, name, token in pairs:
            d = hashlib.sha256(token.encode("utf-8")).digest()
            if d in seen:
                raise ValidationError(f"token of {name}: the same token is given twice")
            seen.add(d)
            out.append((d, Principal(name, role)))
        return cls(tuple(out))

    def check(self, presented: str) -> Principal | None:
        """The holder of ``presented``, or None; constant time in what matches."""
        d = hashlib.sha256(presented.encode("utf-8", errors="replace")).digest()
        found: Principal | None = None
        for digest, who in self.entries:
            if hmac.compare_digest(digest, d):
                found = who
        return found


def _parse(lines: Iterable[tuple[str, str]]) -> Tokens:
    triples: list[tuple[str, str, str]] = []
    for where, raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":", 2)
        if len(parts) < 2:
            raise ValidationError(f"{where}: expected role:token or role:name:token")
        role = parts[0].strip()
        if role not in ROLES:
            raise ValidationError(
                f"{where}: role: expected one of {', '.join(ROLES)}, got {role[:20]!r}"
            )
        if len(parts) == 3 and _NAME.match(parts[1].strip()):
            name, token = parts[1].strip(), parts[2].strip()
        else:
            name, token = f"{role}-{len(triples) + 1}", line.split(":", 1)[1].strip()
        if len(token) < MIN_TOKEN_CHARS or not _TOKEN.match(token):
            raise ValidationError(
                f"{where}: token: expected at least {MIN_TOKEN_CHARS} printable characters "
                "without spaces"
            )
        triples.append((role, name, token))
    return Tokens.from_pairs(triples)


def load_tokens(file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Tokens:
    """Tokens from ``file`` when given, else from ``AIGUILLEUR_TOKENS`` (empty when neither)."""
    if file is not None:
        from aiguilleur._files import read_input_text
        from aiguilleur.errors import CaseFormatError

        p = Path(file)
        if not p.exists():
            raise ValidationError(f"{p}: no such token file")
        try:  # a regular file of at most 1 MiB (not a folder, a device, a binary file)
            text = read_input_text(p, max_bytes=MAX_TOKEN_FILE_BYTES)
        except CaseFormatError as e:
            raise ValidationError(f"token file {e}") from None
        return _parse((f"{p}:{k}", line) for k, line in enumerate(text.splitlines(), 1))
    env = os.environ if environ is None else environ
    text = env.get("AIGUILLEUR_TOKENS", "")
    items = [x for chunk in text.splitlines() for x in chunk.split(",")]
    return _parse((f"AIGUILLEUR_TOKENS item {k}", x) for k, x in enumerate(items, 1))


def token_file(path: str | Path) -> tuple[Tokens, bool]:
    """Tokens from ``path``, made first when it does not exist: one operator token (random).

    The file is created readable by its owner only (0600); the token is never
    printed, the operator reads it from the file. Returns the tokens and whether
    the file was created.
    """
    p = Path(path)
    made = False
    if not p.exists():
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as e:
            raise ValidationError(
                f"{p}: cannot create the token file ({e.strerror or e})"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# role:name:token, one per line (roles: operator, viewer)\n")
            f.write(f"operator:operator:{secrets.token_urlsafe(24)}\n")
        made = True
    return load_tokens(p), made
