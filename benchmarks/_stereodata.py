"""Public stereotype resources as fetched snapshots: where they are and how to read them.

The F02 builder (`f02_build_associations.py`) and benchmark (`f02_stereotypes.py`) read the
resources straight from git snapshots of their public repositories, pinned to the commits below
(`git show COMMIT:PATH`), so the shipped knowledge can be rebuilt and the figures reproduced:

    fetch github:<repo> into $FMFL_MIRROR/<owner>+<name>/repo   (default /work/.mirror)

Nothing here is shipped; `rules/lexicons/stereotypes/NOTICE.md` records the licences.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Source:
    """A pinned public repository."""

    repo: str
    commit: str
    license: str

    @property
    def gitdir(self) -> Path:
        root = Path(os.environ.get("FMFL_MIRROR", "/work/.mirror"))
        return root / self.repo.replace("/", "+") / "repo"

    def read(self, path: str) -> str:
        """A file of the snapshot at the pinned commit."""
        return subprocess.run(
            ["git", "-C", str(self.gitdir), "show", f"{self.commit}:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def json(self, path: str) -> Any:
        return json.loads(self.read(path))

    def csv(self, path: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.read(path))))

    def lines(self, path: str) -> list[str]:
        return [x.strip() for x in self.read(path).splitlines() if x.strip()]


SEEGULL = Source(
    "google-research-datasets/seegull", "0dc4db9f69217aff072375e20e72609b9707a873", "CC-BY-4.0"
)
STEREOSET = Source(
    "xiaoxuanli-a/PhD_StereoSet", "1f49e90b687a18c844411700c8fb9c6dede8328b", "CC-BY-SA-4.0"
)
"""StereoSet (Nadeem et al. 2021) dev+test, regrouped per bias type: `chosen` is the gold
anti-stereotype sentence, `rejected` the gold stereotype (see the repository's notebook)."""
REDDITBIAS = Source("umanlp/RedditBias", "61f9ae9458e26a64ae1113425192280503f8fb92", "MIT")
ABC = Source("TristaCao/U.S_Stereotypes", "5b1f382d838c6aff4c392dc60bd23c1a67e54949", "MIT")
WINOBIAS = Source("uclanlp/corefBias", "0bce984dd081bbc10b0622f326727a024c607895", "MIT")
COUNTRIES = Source("mledoze/countries", "5e9f370050f83ad2ba4cb885f75d66114badf72c", "ODbL-1.0")
WIKISPLIT = Source(
    "google-research-datasets/wiki-split",
    "80f5bddf42d1a68201b7b107ee4b8d86d82e9fde",
    "CC-BY-SA-4.0",
)
EWT = Source(
    "UniversalDependencies/UD_English-EWT",
    "15d613d8447b3478787d4c278730a1e48a945efb",
    "CC-BY-SA-4.0",
)

TOXIGEN = Source(
    "microsoft/TOXIGEN", "01517e814639e0334c920a3c502036c8158aac87", "MIT, CDLA-Permissive-2.0"
)
"""ToxiGen (Hartvigsen et al., ACL 2022): the human-written seed statements in `prompts/`, hateful
(`hate_*`) and neutral (`neutral_*`) per target group; code MIT, data CDLA-Permissive-2.0."""
CHOENNI = Source(
    "RochelleChoenni/stereotypes_in_lms", "09a1c379620bd0548ab51fe524d92717af95453e", "MIT"
)
"""Choenni, Shutova and van Rooij (EMNLP 2021), "Stepmothers are mean and academics are
pretentious": search-engine autocompletions of "why are {group} so ..." for 382 groups
(`data_collection/stereo_dataset/stereo_dataset.csv`, tab-separated)."""
KAMRUZZAMAN = Source(
    "kamruzzaman15/Identifying-Subtler-Biases-in-LLMs",
    "c798be7c7dc5f96e44a2c348faa80d11a29d6a30",
    "MIT",
)
"""Kamruzzaman, Shovon and Kim (ACL Findings 2024), "Investigating Subtler Biases in LLMs: Ageism,
Beauty, Institutional, and Nationality Bias": `dataset.csv` fill-in items with a stereotype and an
anti-stereotype answer each."""
OEWN = Source(
    "globalwordnet/english-wordnet", "d94538ad0df3d7a4c77837bde6af69d7a6592c32", "CC-BY-4.0"
)
"""Open English WordNet (derived from Princeton WordNet 3.0, WordNet licence)."""

STEREOSET_TYPES = ("gender", "race", "religion")
"""StereoSet bias types on demographic axes (`profession` is not one)."""


def stereoset_pairs(bias_type: str) -> list[tuple[str, str, str]]:
    """(context with BLANK, stereotype sentence, anti-stereotype sentence), intrasentence task."""
    rows = STEREOSET.json(f"data/{bias_type}_intra_data.json")
    return [
        (r["prompt"], r["rejected"], r["chosen"]) for r in rows if r["rejected"] and r["chosen"]
    ]


def blank_fill(prompt: str, sentence: str) -> str | None:
    """The words that replace BLANK in `prompt` to give `sentence` (case-insensitive)."""
    if "BLANK" not in prompt:
        return None
    pre, post = prompt.split("BLANK", 1)
    p, s = pre.lower(), sentence.lower()
    q = post.lower().rstrip()
    if not s.startswith(p):
        return None
    rest = s[len(p) :]
    if q and not rest.rstrip().endswith(q.strip()):
        return None
    fill = rest[: len(rest.rstrip()) - len(q.strip())] if q.strip() else rest
    fill = fill.strip(" .,!?")
    return fill or None


def ewt_source(name: str) -> str:
    """Who wrote an EWT document, as far as its file name tells: the blog, the e-mail box or the
    newsgroup (reviews and answers name no author: each is its own)."""
    genre, _, base = name.partition("/")
    parts = base.split("_")
    if genre in ("weblog", "newsgroup"):
        return f"{genre}/{parts[0]}_{parts[1]}"
    if genre == "email":
        return f"email/{parts[0]}"
    return name


def ewt_documents(*splits: str, by_source: bool = False) -> list[list[str]]:
    """The raw sentences of each document of UD English-EWT's `splits` (train, dev, test); with
    `by_source`, the documents of one blog, mailbox or newsgroup joined as one."""
    groups: dict[str, list[str]] = {}
    for split in splits:
        for f in EWT.lines(f"not-to-release/file-lists/files.{split}"):
            doc = [
                line[len("# text = ") :]
                for line in EWT.read(f"not-to-release/sources/{f}").splitlines()
                if line.startswith("# text = ")
            ]
            groups.setdefault(ewt_source(f) if by_source else f, []).extend(doc)
    return list(groups.values())


def ewt_sentences(split: str) -> list[str]:
    """The raw sentences of UD English-EWT's `split` documents (train, dev or test)."""
    return [s for doc in ewt_documents(split) for s in doc]


def wikisplit_sentences(split: str) -> list[str]:
    """The distinct complex (unsplit) Wikipedia sentences of a WikiSplit file (test, tune,
    validation), detokenised lightly (WikiSplit puts spaces around punctuation)."""
    seen: dict[str, None] = {}
    for line in WIKISPLIT.read(f"{split}.tsv").splitlines():
        s = line.split("\t")[0]
        for a, b in (
            (" ,", ","),
            (" .", "."),
            (" 's", "'s"),
            ("( ", "("),
            (" )", ")"),
            (" ;", ";"),
        ):
            s = s.replace(a, b)
        seen.setdefault(s.strip(), None)
    return list(seen)


TOXIGEN_GROUPS = (
    "asian", "bisexual", "black", "chinese", "immigrant", "jewish", "latino", "lgbtq",
    "mental_disability", "mexican", "middle_east", "muslim", "native_american",
    "physical_disability", "trans", "women",
)  # fmt: skip
"""ToxiGen's target groups (file names under `prompts/`)."""


def toxigen_sentences(kind: str, group: str) -> list[str]:
    """The distinct seed statements of `prompts/{kind}_{group}_1k.txt` (kind `hate` or `neutral`):
    each line is a prompt of `- `-prefixed statements joined by literal `\\n`."""
    path = f"prompts/{kind}_{group}_1k.txt"
    try:
        text = TOXIGEN.read(path)
    except subprocess.CalledProcessError:
        return []
    seen: dict[str, None] = {}
    for line in text.splitlines():
        for part in line.split("\\n"):
            s = part.strip().removeprefix("-").strip()
            if len(s) > 3:
                seen.setdefault(s, None)
    return list(seen)


def choenni_rows() -> list[tuple[str, str, str]]:
    """(category, group, completion) of Choenni et al.'s autocompletions, distinct, in file order
    (the fields carry stray newlines)."""
    text = CHOENNI.read("data_collection/stereo_dataset/stereo_dataset.csv")
    rows = csv.DictReader(io.StringIO(text), delimiter="\t")
    seen: dict[tuple[str, str, str], None] = {}
    for r in rows:
        key = tuple(
            " ".join(r[k].split()) for k in ("target_category", "target_group", "completion")
        )
        if all(key):
            seen.setdefault((key[0], key[1], key[2]), None)
    return list(seen)


def oewn() -> tuple[dict[str, Any], dict[str, Any]]:
    """Open English WordNet's (entries, synsets) at the pinned commit, parsed from its YAML sources
    once and cached as JSON under the temporary folder (the YAML takes about a minute)."""
    import tempfile

    import yaml

    cache = Path(tempfile.gettempdir()) / f"fmfl-oewn-{OEWN.commit[:12]}.json"
    if cache.exists():
        data = json.loads(cache.read_text("utf-8"))
        return data["entries"], data["synsets"]
    names = subprocess.run(
        ["git", "-C", str(OEWN.gitdir), "ls-tree", "-r", "--name-only", OEWN.commit, "src/yaml"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    entries: dict[str, Any] = {}
    synsets: dict[str, Any] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in names:
        name = path.rsplit("/", 1)[-1]
        if not name.endswith(".yaml") or name == "frames.yaml":
            continue
        part = yaml.load(OEWN.read(path), Loader=loader)
        (entries if name.startswith("entries-") else synsets).update(part)
    cache.write_text(json.dumps({"entries": entries, "synsets": synsets}), "utf-8")
    return entries, synsets
