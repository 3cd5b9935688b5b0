"""An asv configuration read by asv's own loader, with its paths resolved.

asv changes into the configuration's directory before it runs, so relative paths in
``asv.conf.json`` (``repo``, ``results_dir``, ``html_dir``) are relative to that directory, not
to the caller's. ``load_project`` resolves them the same way for the commands that drive asv
(``gate``, ``publish``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class AsvConfigError(ValueError):
    """The configuration is missing or unusable; the message names it and the fix."""


@dataclass(frozen=True)
class AsvProject:
    """An asv configuration as asv reads it, with its paths resolved (all absolute)."""

    config_path: Path
    config: object  # asv.config.Config
    repo_dir: Path  # the git checkout: ``repo`` when a local directory, else the config's dir
    results_dir: Path
    html_dir: Path


def load_project(config_path: str | os.PathLike = "asv.conf.json") -> AsvProject:
    """Read ``asv.conf.json`` with ``asv.config.Config.load`` (comments, defaults, checks)."""
    from asv import util as asv_util
    from asv.config import Config

    path = Path(config_path).resolve()
    if not path.is_file():
        raise AsvConfigError(f"no asv configuration at {config_path}; run from the project's "
                             "root directory or give --config PATH/asv.conf.json")
    try:
        config = Config.load(str(path))
    except (asv_util.UserError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise AsvConfigError(f"{config_path}: not a usable asv configuration: {exc}") from None
    for key in ("repo", "results_dir", "html_dir"):
        value = getattr(config, key, None)
        if not isinstance(value, str):
            raise AsvConfigError(f"{config_path}: not a usable asv configuration: {key!r} "
                                 f"should be a string, got {type(value).__name__}")
    base = path.parent
    repo = base / str(config.repo)
    repo_dir = repo.resolve() if repo.is_dir() else base
    return AsvProject(path, config, repo_dir, (base / config.results_dir).resolve(),
                      resolve_parent(base / config.html_dir))


def resolve_parent(path: str | os.PathLike) -> Path:
    """``path`` absolute with its parent's symbolic links resolved but not its own, so that a
    check of the path itself (is it a symlink?) still sees what it names."""
    path = Path(path).absolute()
    if path.name in ("", ".."):  # '/' or 'x/..': no last name of its own to keep
        return path.resolve()
    return path.parent.resolve() / path.name
