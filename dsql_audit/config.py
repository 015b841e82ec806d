"""Configuration: ``[tool.dsql-audit]`` in pyproject.toml, or ``dsql-audit.toml``.

```toml
[tool.dsql-audit]
profile = "2026-09-18"          # DSQL release to judge against (default: newest)
framework = "flyway"            # force a migration framework
select = ["DSQL1", "sequence"]  # codes, code prefixes or slugs (default: all)
extend-select = ["DSQL404"]     # added to select (with ruff's meaning)
ignore = ["missing-primary-key"]
fail-on = "error"
exclude = ["legacy/**"]          # replaces the default excludes
extend-exclude = ["vendor/**"]  # added to them
single-transaction = false      # psql -1 semantics for plain .sql files
max-file-size = "5MB"           # application source under a folder bigger than this is skipped (0: no limit)

[tool.dsql-audit.severity]      # per-rule severity overrides
unbounded-write = "error"

[tool.dsql-audit.per-file-ignores]
"db/seeds/*.sql" = ["unbounded-write", "DSQL404"]
```
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dsql_audit.catalog import Catalog, Rule
from dsql_audit.model import Severity

KEYS = {"profile", "framework", "select", "extend-select", "ignore", "fail-on", "exclude", "extend-exclude",
        "single-transaction", "severity", "per-file-ignores", "format", "baseline", "max-file-size", "assess"}
ASSESS_KEYS = {"max-errors": int, "max-effort-hours": (int, float), "top-statements": int}
FAIL_ON = ("error", "warning", "info", "never")
DEFAULT_MAX_FILE_SIZE = 5_000_000


def parse_size(value) -> int:
    """A size in bytes from 5000000, "5MB", "500k", "2 GiB" (k/M/G are 1000s, KiB/MiB/GiB 1024s); 0 is no
    limit. Raises ValueError."""
    import re

    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        n = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(i?)[bB]?\s*", str(value))
        if m is None:
            raise ValueError(f"not a size: {value!r} (say 5000000, 5MB or 500kB; 0 for no limit)")
        scale = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}[m.group(2).lower()]
        if m.group(3):
            if not m.group(2):
                raise ValueError(f"not a size: {value!r}")
            scale = {1000: 1024, 1000**2: 1024**2, 1000**3: 1024**3}[scale]
        n = int(float(m.group(1)) * scale)
    if n < 0:
        raise ValueError(f"not a size: {value!r} (negative)")
    return n


class ConfigError(ValueError):
    pass


@dataclass
class Config:
    profile: str | None = None
    framework: str | None = None
    select: list = field(default_factory=list)
    ignore: list = field(default_factory=list)
    fail_on: str = "error"
    exclude: list = field(default_factory=list)  # replaces the default excludes when given
    extend_exclude: list = field(default_factory=list)
    single_transaction: bool = False
    severity: dict = field(default_factory=dict)
    per_file_ignores: dict = field(default_factory=dict)
    baseline: str | None = None
    format: str | None = None  # the report format when -f is not given
    assess: dict = field(default_factory=dict)  # [tool.dsql-audit.assess]: the decision's thresholds
    max_file_size: int = DEFAULT_MAX_FILE_SIZE  # bytes; 0: no limit
    source: str | None = None  # the file the config came from

    def validate(self, catalog: Catalog) -> None:
        from dsql_audit.sources.migrations import BY_NAME

        where = self.source or "config"
        if self.framework is not None and self.framework not in BY_NAME:
            raise ConfigError(f"{where}: framework {self.framework!r} is not one of {', '.join(sorted(BY_NAME))}")
        if self.fail_on not in FAIL_ON:
            raise ConfigError(f"{where}: fail-on must be {', '.join(FAIL_ON[:-1])} or never, not {self.fail_on!r}")
        for key in list(self.select) + list(self.ignore) + list(self.severity) + [
                r for rules in self.per_file_ignores.values() for r in rules]:
            if not _matches_any_rule(key, catalog):
                raise ConfigError(f"{self.source or 'config'}: unknown rule or code {key!r}")
        for key, sev in self.severity.items():
            try:
                Severity.parse(sev)
            except ValueError as exc:
                raise ConfigError(f"{self.source or 'config'}: severity for {key}: {exc}") from None

    def _selected(self, rule: Rule, keys) -> bool:
        return any(_rule_matches(k, rule) for k in keys)

    def enabled(self, rule: Rule, path: str) -> bool:
        if self.select and not self._selected(rule, self.select):
            return False
        if self.ignore and self._selected(rule, self.ignore):
            return False
        for pattern, rules in self.per_file_ignores.items():
            if _path_matches(path, pattern) and self._selected(rule, rules):
                return False
        return True

    def severity_for(self, rule: Rule, default: Severity) -> Severity:
        for key, sev in self.severity.items():
            if _rule_matches(key, rule):
                return Severity.parse(sev)
        return default

    def extend_select(self, keys) -> None:
        """ruff's extend-select: added to a selection; with none (every rule) there is nothing to add."""
        if self.select:
            self.select = self.select + [k for k in keys if k not in self.select]

    def apply(self, findings: list, catalog: Catalog) -> list:
        """Findings made elsewhere (a replay, a catalog read, a saved report) under this config's selection,
        per-file ignores and severity overrides, as a scan makes them; a finding of no known rule is kept."""
        kept = []
        for f in findings:
            rule = catalog.get(f.name) or catalog.get(f.rule)
            if rule is not None:
                if not self.enabled(rule, f.path):
                    continue
                f.severity = self.severity_for(rule, f.severity)
            kept.append(f)
        return kept


def _rule_matches(key: str, rule: Rule) -> bool:
    k = key.strip()
    return k.lower() == rule.slug or (k.upper().startswith("DSQL") and rule.code.startswith(k.upper()))


def _matches_any_rule(key: str, catalog: Catalog) -> bool:
    return key.upper() == "ALL" or any(_rule_matches(key, r) for r in catalog)


def _path_matches(path: str, pattern: str) -> bool:
    p = path.replace("\\", "/")
    return fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, f"*/{pattern}") or Path(p).match(pattern)


_KIND = {str: "string", bool: "boolean", list: "list", dict: "table"}


def _from_table(data: dict, source: str) -> Config:
    unknown = set(data) - KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(sorted(unknown))}")
    # each setting's shape, checked before use: a wrong one is a ConfigError naming the file and the key
    shapes = {"profile": str, "framework": str, "fail-on": str, "baseline": str, "format": str,
              "single-transaction": bool, "select": list, "extend-select": list, "ignore": list, "exclude": list,
              "extend-exclude": list, "severity": dict,
              "per-file-ignores": dict}
    for key, kind in shapes.items():
        if key in data and not isinstance(data[key], kind):
            raise ConfigError(f"{source}: {key} must be a {_KIND[kind]}, not {data[key]!r}")
    if not all(isinstance(v, str) for v in data.get("severity", {}).values()):
        raise ConfigError(f"{source}: severity values must be strings (error, warning or info)")
    if not all(isinstance(v, list) and all(isinstance(r, str) for r in v)
               for v in data.get("per-file-ignores", {}).values()):
        raise ConfigError(f"{source}: per-file-ignores values must be lists of rule codes or names")
    cfg = Config(source=source)
    cfg.profile = data.get("profile")
    cfg.framework = data.get("framework")
    cfg.select = list(data.get("select", []))
    cfg.extend_select(list(data.get("extend-select", [])))
    cfg.ignore = list(data.get("ignore", []))
    cfg.fail_on = data.get("fail-on", "error")
    cfg.exclude = list(data.get("exclude", []))
    cfg.extend_exclude = list(data.get("extend-exclude", []))
    cfg.single_transaction = bool(data.get("single-transaction", False))
    cfg.severity = dict(data.get("severity", {}))
    cfg.per_file_ignores = {k: list(v) for k, v in data.get("per-file-ignores", {}).items()}
    cfg.baseline = data.get("baseline")
    if cfg.baseline and not Path(cfg.baseline).is_absolute() and source:
        cfg.baseline = str(Path(source).parent / cfg.baseline)  # as ruff: relative to the config file
    cfg.format = data.get("format")
    assess = data.get("assess", {})
    if not isinstance(assess, dict):
        raise ConfigError(f"{source}: assess must be a table")
    for key, value in assess.items():
        if key not in ASSESS_KEYS:
            raise ConfigError(f"{source}: assess: unknown setting {key} (one of {', '.join(sorted(ASSESS_KEYS))})")
        if isinstance(value, bool) or not isinstance(value, ASSESS_KEYS[key]) or value < 0:
            raise ConfigError(f"{source}: assess: {key} must be a number >= 0, not {value!r}")
    cfg.assess = dict(assess)
    if "max-file-size" in data:
        try:
            cfg.max_file_size = parse_size(data["max-file-size"])
        except ValueError as exc:
            raise ConfigError(f"{source}: max-file-size: {exc}") from None
    if "format" in data:
        from dsql_audit.report import FORMATS

        if data["format"] not in FORMATS:
            raise ConfigError(f"{source}: format must be one of {', '.join(FORMATS)}, not {data['format']!r}")
    for name in ("select", "ignore", "exclude", "extend_exclude"):
        if not all(isinstance(x, str) for x in getattr(cfg, name)):
            raise ConfigError(f"{source}: {name} must be a list of strings")
    return cfg


def config_start(paths) -> Path | None:
    """Where to look for the config of these inputs, as ruff does: the folder holding them (their common
    folder when several are given); None for stdin alone (the cwd is used)."""
    import os

    folders = []
    for p in paths or ():
        if not p or p == "-":
            continue
        path = Path(p).absolute()
        folders.append(str(path if path.is_dir() else path.parent))
    if not folders:
        return None
    try:
        return Path(os.path.commonpath(folders))
    except ValueError:  # different drives
        return Path(folders[0])


def load_config(explicit: str | None = None, start: Path | None = None, *, then_cwd: bool = False) -> Config:
    """An explicit file, else the nearest dsql-audit.toml or pyproject.toml with a [tool.dsql-audit] table,
    searching up from ``start`` (the inputs' folder, see config_start; the cwd when None). As with ruff, a
    scanned project's config is its own: a source tree outside the cwd's project does not take the cwd's
    config. ``then_cwd``: inputs that are not a project (a log, a saved report) fall back to the cwd's."""
    if explicit:
        path = Path(explicit)
        return _load_file(path, required=True)
    found = _nearest(Path(start or Path.cwd()).resolve())
    if found is None and then_cwd and start is not None:
        found = _nearest(Path.cwd().resolve())
    return found or Config()


def _nearest(cur: Path) -> Config | None:
    for d in [cur, *cur.parents]:
        for name in ("dsql-audit.toml", ".dsql-audit.toml", "pyproject.toml"):
            p = d / name
            if p.is_file():
                cfg = _load_file(p, required=False)
                if cfg is not None:
                    return cfg
    return None


def _load_file(path: Path, required: bool) -> Config | None:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: tool must be a table")
    if path.name == "pyproject.toml":
        table = tool.get("dsql-audit")
        if table is None:
            if required:
                raise ConfigError(f"{path}: no [tool.dsql-audit] table")
            return None
    else:
        table = tool.get("dsql-audit", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.dsql-audit] must be a table")
    return _from_table(table, str(path))
