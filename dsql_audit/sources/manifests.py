"""Dependency manifests (requirements files, pyproject.toml, Pipfile, setup.cfg, package.json): the AWS DSQL
adapters a project depends on. A project can use an adapter that no scanned source file imports by name
(the Prisma tools run as a CLI; Django names its backend in a settings string built at run time)."""

from __future__ import annotations

import re

from dsql_audit.sources.app import Emitted

_NAMES = re.compile(r"^(?:requirements[\w.-]*\.(?:txt|in)|constraints[\w.-]*\.txt|pyproject\.toml|Pipfile|"
                    r"setup\.cfg|package\.json)$", re.I)
# package name as registries write it (PEP 503-normalised for Python) → the adapter in adapters.ADAPTERS
PACKAGES = {
    "aurora-dsql-django": "aurora-dsql-django",
    "aurora-dsql-sqlalchemy": "aurora-dsql-sqlalchemy",
    "aurora-dsql-tortoise-orm": "aurora-dsql-tortoise",
    "@aws/aurora-dsql-prisma-tools": "aurora-dsql-prisma-tools",
}
# a dependency mention: the name as a whole token, where a version specifier, quote or line end may follow
_MENTION = re.compile(r"(?<![\w@/.-])(@aws/aurora[-_.]dsql[-_.]prisma[-_.]tools|aurora[-_.]dsql[-_.](?:django|"
                      r"sqlalchemy|tortoise[-_.]orm))(?![\w-])", re.I)


def is_manifest(name: str) -> bool:
    return bool(_NAMES.match(name))


def extract(path: str, text: str) -> list[Emitted]:
    """One Adapter record per adapter the manifest names (at its first mention), skipping comments."""
    out, seen = [], set()
    comment = "#" if not path.endswith(".json") else None
    for number, line in enumerate(text.splitlines(), 1):
        body = line.split(comment, 1)[0] if comment else line
        for m in _MENTION.finditer(body):
            name = PACKAGES.get(re.sub(r"[-_.]+", "-", m.group(1).lower()).replace("@aws-", "@aws/"))
            if name and name not in seen:
                seen.add(name)
                out.append(Emitted(line=number, column=m.start() + 1, construct={"kind": "Adapter", "name": name},
                                   origin=f"{m.group(1)} in {path.rsplit('/', 1)[-1]}"))
    return out
