"""The user's local Hugging Face cache, read only: what it holds that Studio can load, and where a repository
id's snapshot lies. Nothing here (or anywhere in Studio) downloads: a repository must be in the cache.

The cache is the one `huggingface_hub` uses (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub),
laid out as `models--org--name/{blobs/, refs/main, snapshots/<commit>/...}`, where a snapshot's files are
symbolic links into the repository's own `blobs/`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.engine.importers.sources import Source, SourceKind, classify
from studio.engine.untrusted.values import read_limited
from studio.errors import StudioError

REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_REVISION = re.compile(r"[A-Za-z0-9._-]{1,128}(?:/[A-Za-z0-9._-]{1,128}){0,4}")  # main, v1.0, refs/pr/1
_COMMIT = re.compile(r"[0-9a-f]{40}")
DEFAULT_REVISION = "main"


def cache_folder() -> Path:
    """The Hugging Face hub cache folder, read from the environment now (as huggingface_hub would at start)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(os.path.expanduser(explicit)))
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "huggingface" / "hub"


def looks_like_repo_id(text: str) -> bool:
    """Whether `text` reads as a repository id (`org/name`)."""
    return REPO_ID.fullmatch(text) is not None and ".." not in text


def _not_cached(repo_id: str, what: str = "") -> StudioError:
    return StudioError(
        f"{repo_id}{what} is not in the local Hugging Face cache (HF_HUB_CACHE={cache_folder()}): "
        f"Studio never downloads; run `huggingface-cli download {repo_id}` first"
    )


@dataclass(frozen=True)
class CachedSnapshot:
    """A repository revision found in the cache: its snapshot folder and the repository folder around it."""

    repo_id: str
    revision: str  # as asked: a branch, a tag or a commit
    commit: str
    folder: Path  # snapshots/<commit>
    repo_folder: Path  # models--org--name: the snapshot's links may point inside it (at blobs/)

    def origin(self) -> dict[str, Any]:
        """The `origin` members a model imported from this snapshot records."""
        return {"repo_id": self.repo_id, "revision": self.commit, "source": f"hf-cache:{self.repo_id}@{self.commit}"}


def resolve(repo_id: str, revision: str | None = None) -> CachedSnapshot:
    """The cached snapshot of `repo_id` at `revision` (refs/main by default); a one-line StudioError when the
    cache lacks it."""
    if not looks_like_repo_id(repo_id):
        raise StudioError(f"'{repo_id}' is not a Hugging Face repository id (org/name)")
    wanted = revision or DEFAULT_REVISION
    if _REVISION.fullmatch(wanted) is None or ".." in wanted.split("/"):
        raise StudioError(f"'{wanted}' is not a revision (a branch, a tag or a commit hash)")
    repo_folder = cache_folder() / f"models--{repo_id.replace('/', '--')}"
    if not repo_folder.is_dir():
        raise _not_cached(repo_id)
    snapshots = repo_folder / "snapshots"
    if _COMMIT.fullmatch(wanted) and (snapshots / wanted).is_dir():
        commit = wanted
    else:
        ref = repo_folder / "refs" / wanted
        if not ref.is_file():
            raise _not_cached(repo_id, f" at revision {wanted}")
        try:
            commit = read_limited(ref, 256).decode("ascii", "replace").strip()
        except (OSError, StudioError):  # MalformedError (a ref of more than 256 bytes) is a StudioError
            raise StudioError(f"the cache's refs/{wanted} of {repo_id} cannot be read: it is damaged") from None
        if _COMMIT.fullmatch(commit) is None:
            raise StudioError(f"the cache's refs/{wanted} of {repo_id} does not hold a commit hash: it is damaged")
    folder = snapshots / commit
    if folder.is_symlink() or not folder.is_dir():
        raise _not_cached(repo_id, f" at revision {wanted}")
    return CachedSnapshot(repo_id, wanted, commit, folder, repo_folder)


@dataclass(frozen=True)
class CacheEntry:
    """One cached revision of a model repository, and whether Studio can import it."""

    repo_id: str
    commit: str
    refs: tuple[str, ...]
    kind: str  # a SourceKind value
    what: str
    loadable: bool
    path: str
    size_bytes: int

    @property
    def command(self) -> str:
        """The command that imports it."""
        pinned = "" if DEFAULT_REVISION in self.refs else f" --revision {self.refs[0] if self.refs else self.commit}"
        return f"studio models import {self.repo_id}{pinned}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio models import --hf-cache --json`)."""
        return {**self.__dict__, "refs": list(self.refs), "command": self.command}


@dataclass(frozen=True)
class CacheListing:
    """What the cache holds: its folder, one entry per cached model revision, and the scan's warnings."""

    cache: Path
    entries: list[CacheEntry]
    warnings: list[str]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "hf_cache": str(self.cache),
            "entries": [entry.as_dict() for entry in self.entries],
            "warnings": self.warnings,
        }


def list_cache() -> CacheListing:
    """Every cached model repository revision, loadable ones first, each said what it is (never downloads)."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub is imported: it reads this once
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    cache = cache_folder()
    try:
        info = scan_cache_dir(cache)
    except CacheNotFound:
        return CacheListing(cache, [], [])
    except (OSError, ValueError) as error:
        raise StudioError(f"the Hugging Face cache at {cache} cannot be read ({error})") from None
    entries = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        for revision in repo.revisions:
            try:
                source = classify(revision.snapshot_path, links_within=repo.repo_path)
            except StudioError as error:
                source = Source(SourceKind.UNKNOWN, revision.snapshot_path, str(error))
            entries.append(
                CacheEntry(
                    repo.repo_id,
                    revision.commit_hash,
                    tuple(sorted(revision.refs)),
                    source.kind.value,
                    source.what,
                    source.loadable,
                    str(revision.snapshot_path),
                    int(revision.size_on_disk),
                )
            )
    entries.sort(key=lambda e: (not e.loadable, e.repo_id.lower(), DEFAULT_REVISION not in e.refs, e.commit))
    return CacheListing(cache, entries, [str(warning) for warning in info.warnings])
