"""Public collections behind FMFL-R01/R02's trained layers and their leave-one-source-out benchmark.

Every collection is read from a snapshot of its public GitHub repository (`--mirror`, one bare git
directory per repository as `owner+name/repo`, read with `git show <commit>:<path>`), pinned to the
commit recorded in `SOURCES` (the same table is written to `rules/jailbreak/PROVENANCE.md`). Nothing
is downloaded here; a missing snapshot is a clear error naming the repository.

Roles: `attack` collections hold jailbreak prompts or harmful requests; `benign` ones real benign
text; `eval_only` collections are never used for training or tuning (FP sets, hard negatives).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MIRROR = Path("/work/.mirror")
SHARED = Path(__file__).resolve().parents[2] / "shared/data"


@dataclass(frozen=True)
class Source:
    """One public collection: where it lives and under which licence."""

    repo: str
    commit: str
    licence: str
    paths: tuple[str, ...]
    note: str


SOURCES: dict[str, Source] = {
    "advbench": Source(
        "NJUNLP/ReNeLLM",
        "522d8e1df7d6ee9cfba4b09caa9990c613b0a4a6",
        "MIT (AdvBench, llm-attacks; copy in ReNeLLM, MIT)",
        ("data/advbench/harmful_behaviors.csv",),
        "520 harmful behaviours (Zou et al. 2023)",
    ),
    "renellm": Source(
        "NJUNLP/ReNeLLM",
        "522d8e1df7d6ee9cfba4b09caa9990c613b0a4a6",
        "MIT",
        ("utils/scenario_nest_utils.py",),
        "the three published nesting scenarios (code completion, LaTeX table, text continuation); "
        "the recipe is re-implemented with rule-based rewrites, never used for training",
    ),
    "harmbench": Source(
        "busycalibrating/AdversariaLLM",
        "f970939273ea17b491fadf6001fddc36ed3ae3ff",
        "MIT (HarmBench, centerforaisafety; data/behavior_datasets/LICENSE.txt)",
        (
            "data/behavior_datasets/harmbench_behaviors_text_all.csv",
            "data/optimizer_targets/harmbench_targets_text.json",
        ),
        "HarmBench text behaviours and their 'Sure, here is ...' optimiser targets",
    ),
    "advbench_targets": Source(
        "busycalibrating/AdversariaLLM",
        "f970939273ea17b491fadf6001fddc36ed3ae3ff",
        "MIT (AdvBench targets, llm-attacks)",
        ("data/optimizer_targets/extra_targets/advbench_targets.json",),
        "AdvBench 'Sure, here is ...' targets",
    ),
    "malicious_instruct": Source(
        "busycalibrating/AdversariaLLM",
        "f970939273ea17b491fadf6001fddc36ed3ae3ff",
        "MIT (copy in AdversariaLLM; MaliciousInstruct, Huang et al. 2023)",
        ("data/behavior_datasets/malicious_instruct.txt",),
        "100 malicious instructions",
    ),
    "tdc2023": Source(
        "busycalibrating/AdversariaLLM",
        "f970939273ea17b491fadf6001fddc36ed3ae3ff",
        "MIT (copy in AdversariaLLM; TDC 2023 red-teaming track behaviours)",
        ("data/behavior_datasets/extra_behavior_datasets/tdc2023_test_phase_behaviors.csv",),
        "50 harmful behaviours",
    ),
    "adv_training": Source(
        "busycalibrating/AdversariaLLM",
        "f970939273ea17b491fadf6001fddc36ed3ae3ff",
        "MIT (HarmBench adversarial-training behaviours)",
        ("data/behavior_datasets/extra_behavior_datasets/adv_training_behaviors.csv",),
        "100 harmful behaviours",
    ),
    "strongreject": Source(
        "busycalibrating/AdversariaLLM",
        "f970939273ea17b491fadf6001fddc36ed3ae3ff",
        "MIT (StrongREJECT, dsbowen/strong_reject)",
        ("data/behavior_datasets/strongreject_dataset.csv",),
        "313 forbidden prompts",
    ),
    "refusals": Source(
        "busycalibrating/AdversariaLLM",
        "f970939273ea17b491fadf6001fddc36ed3ae3ff",
        "MIT (HarmBench adversarial-training safe responses)",
        (
            "data/safe_responses/adv_training_behaviors_safe_responses.csv",
            "data/safe_responses/adv_training_behaviors_safe_responses_longer.csv",
        ),
        "refusals to harmful behaviours",
    ),
    "deepinception": Source(
        "tmlr-group/DeepInception",
        "fc5689e76c4dd87a14babf1eadf890532f2b6880",
        "MIT",
        ("res/data_main.json", "res/data_further_q.json"),
        "published nested-fiction attack prompts (and the recipe, re-implemented)",
    ),
    "hh_redteam": Source(
        "anthropics/hh-rlhf",
        "354e5c3cb8960630860dd5774a6ac2a58313bf4d",
        "MIT",
        ("harmless-base/test.jsonl.gz",),
        "first human turn of red-team dialogues; responses of chosen/rejected for R02",
    ),
    "selfinstruct": Source(
        "yizhongw/self-instruct",
        "0b26ccaa415992100fa32df62d41b994cf928e23",
        "Apache-2.0",
        (
            "data/seed_tasks.jsonl",
            "human_eval/user_oriented_instructions.jsonl",
            "human_eval/predictions/text-davinci-003_predictions.jsonl",
            "human_eval/predictions/text-davinci-002_predictions.jsonl",
            "human_eval/predictions/text-davinci-001_predictions.jsonl",
        ),
        "human-written seed and user-oriented instructions (benign prompts), benign answers",
    ),
    "chatgpt_prompts": Source(
        "f/awesome-chatgpt-prompts",
        "818ac2f32e3b5440311090268b390a99b4156534",
        "CC0-1.0",
        ("prompts.csv",),
        "benign 'act as' role-play prompts (those R01's signatures flag are left out)",
    ),
    "t0": Source(
        "yizhongw/self-instruct",
        "0b26ccaa415992100fa32df62d41b994cf928e23",
        "Apache-2.0 (repository); underlying P3 datasets under their own licences",
        ("data/finetuning/t0_train_50k/data_per_template/",),
        "P3 prompts over news, reviews, Wikipedia passages, Q&A (benign prompts)",
    ),
    "ewt": Source(
        "UniversalDependencies/UD_English-EWT",
        "15d613d8447b3478787d4c278730a1e48a945efb",
        "CC BY-SA 4.0",
        ("en_ewt-ud-dev.conllu", "en_ewt-ud-test.conllu"),
        "human-written web sentences (blogs, reviews, e-mail, answers): FP set, eval only",
    ),
    "gum_howto": Source(
        "UniversalDependencies/UD_English-GUM",
        "afb41ee9bca57991125814fa04d96a0e61470c8b",
        "CC BY-NC-SA 4.0 (wikiHow part)",
        ("en_gum-ud-dev.conllu", "en_gum-ud-test.conllu"),
        "wikiHow how-to documents: benign step-by-step hard negatives for R02, eval only",
    ),
    "tweets": Source(
        "cardiffnlp/tweeteval",
        "4fbd22cd78421f05b1ecdb4fc5725bc7a7bd8f66",
        "TweetEval (per-task licences, Twitter terms)",
        ("datasets/emotion/test_text.txt", "datasets/irony/test_text.txt"),
        "tweets with hashtags and emoji: suffix hard negatives, eval only",
    ),
    "ud_de": Source(
        "UniversalDependencies/UD_German-GSD",
        "297fcf350481058d0737a27f0f8fd03b2eadd67a",
        "CC BY-SA 4.0",
        ("de_gsd-ud-test.conllu",),
        "German sentences: non-English hard negatives, eval only",
    ),
    "ud_fr": Source(
        "UniversalDependencies/UD_French-GSD",
        "830e2782304af08b3cc1c9250475343e04274d81",
        "CC BY-SA 4.0",
        ("fr_gsd-ud-test.conllu",),
        "French sentences: non-English hard negatives, eval only",
    ),
    "piqa": Source(
        "ybisk/ybisk.github.io",
        "21edab439af693b961be2f069e8690a88d3b4e37",
        "AFL-3.0 (PIQA, Bisk et al. 2020)",
        ("piqa/data/valid.jsonl", "piqa/data/valid-labels.lst", "piqa/data/tests.jsonl"),
        "human-written how-to goals and solutions (instructables.com): benign hard negatives; "
        "valid split for training and tuning, test split for evaluation only",
    ),
    "wikisplit": Source(
        "google-research-datasets/wiki-split",
        "80f5bddf42d1a68201b7b107ee4b8d86d82e9fde",
        "CC BY-SA 4.0 (Wikipedia)",
        ("tune.tsv",),
        "Wikipedia sentences: tuning text for the suffix layer's token-kind rates",
    ),
    "tweets_tune": Source(
        "cardiffnlp/tweeteval",
        "4fbd22cd78421f05b1ecdb4fc5725bc7a7bd8f66",
        "TweetEval (per-task licences, Twitter terms)",
        ("datasets/emotion/train_text.txt", "datasets/irony/train_text.txt"),
        "tweets (train splits): tuning text for the suffix layer",
    ),
    "ud_de_dev": Source(
        "UniversalDependencies/UD_German-GSD",
        "297fcf350481058d0737a27f0f8fd03b2eadd67a",
        "CC BY-SA 4.0",
        ("de_gsd-ud-dev.conllu",),
        "German sentences (dev split): tuning text for the suffix layer",
    ),
    "ud_fr_dev": Source(
        "UniversalDependencies/UD_French-GSD",
        "830e2782304af08b3cc1c9250475343e04274d81",
        "CC BY-SA 4.0",
        ("fr_gsd-ud-dev.conllu",),
        "French sentences (dev split): tuning text for the suffix layer",
    ),
    "pair": Source(
        "zyxalter/PAIR-Replication",
        "b46d7e16364d471662af5a997e64b43dd0e48c17",
        "no licence stated: read for evaluation only, never redistributed or trained on",
        ("sample_result/fianl_prompt.csv",),
        "PAIR attack prompts written by an attacker LLM (60 streams x 3 iterations over AdvBench "
        "goals): held-out semantic-jailbreak family, eval only",
    ),
    "pap": Source(
        "CHATS-lab/persuasive_jailbreaker",
        "11f8e8e89e5fcb2aaeb9d05b9570495d004b499d",
        "Apache-2.0",
        ("PAP_Better_Incontext_Sample/mutation_utils.py",),
        "the published persuasive adversarial prompts (PAP) of the in-context examples: "
        "held-out persuasion family, eval only",
    ),
}


class MissingSource(RuntimeError):
    """A snapshot is not under the mirror folder."""


@functools.lru_cache(maxsize=256)
def _show(mirror: Path, name: str, path: str) -> bytes:
    src = SOURCES[name]
    gitdir = mirror / src.repo.replace("/", "+") / "repo"
    if not gitdir.exists():
        raise MissingSource(f"{src.repo}: no snapshot at {gitdir} (fetch github:{src.repo})")
    out = subprocess.run(
        ["git", "-C", str(gitdir), "show", f"{src.commit}:{path}"],
        capture_output=True,
        check=False,
    )
    if out.returncode:
        raise MissingSource(f"{src.repo}@{src.commit}:{path}: {out.stderr.decode().strip()}")
    return out.stdout


def _text(mirror: Path, name: str, path: str) -> str:
    return _show(mirror, name, path).decode("utf-8")


def _csv(mirror: Path, name: str, path: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_text(mirror, name, path))))


def _conllu_sentences(raw: str) -> list[tuple[str, str]]:
    """(document id, sentence text) of a CoNLL-U file."""
    doc, out = "", []
    for line in raw.splitlines():
        if line.startswith("# newdoc id"):
            doc = line.split("=", 1)[1].strip()
        elif line.startswith("# text ="):
            out.append((doc, line.split("=", 1)[1].strip()))
    return out


def advbench(mirror: Path) -> list[str]:
    """AdvBench harmful behaviours."""
    return [r["goal"] for r in _csv(mirror, "advbench", SOURCES["advbench"].paths[0])]


def harmbench(mirror: Path) -> list[str]:
    """HarmBench text behaviours (the request only; contextual ones without their context)."""
    rows = _csv(mirror, "harmbench", SOURCES["harmbench"].paths[0])
    return [r["Behavior"] for r in rows if r["FunctionalCategory"] != "copyright"]


def malicious_instruct(mirror: Path) -> list[str]:
    """MaliciousInstruct's instructions."""
    text = _text(mirror, "malicious_instruct", SOURCES["malicious_instruct"].paths[0])
    return [line.strip() for line in text.splitlines() if line.strip()]


def behaviours(mirror: Path, name: str) -> list[str]:
    """HarmBench-format behaviour files (`tdc2023`, `adv_training`)."""
    return [r["Behavior"] for r in _csv(mirror, name, SOURCES[name].paths[0])]


def strongreject(mirror: Path) -> list[str]:
    """StrongREJECT forbidden prompts."""
    rows = _csv(mirror, "strongreject", SOURCES["strongreject"].paths[0])
    return [r["forbidden_prompt"] for r in rows]


def deepinception(mirror: Path) -> list[str]:
    """The published DeepInception attack prompts."""
    out = []
    for path in SOURCES["deepinception"].paths:
        out += [r["inception_attack"] for r in json.loads(_text(mirror, "deepinception", path))]
    return out


def renellm_scenarios(mirror: Path) -> list[str]:
    """ReNeLLM's three nesting scenarios, `<>` marking where the rewritten request goes."""
    src = _text(mirror, "renellm", SOURCES["renellm"].paths[0])
    return [s.replace("{<>}", "<>") for s in re.findall(r'r"""(.*?)"""', src, re.DOTALL)]


def targets(mirror: Path, name: str) -> list[str]:
    """'Sure, here is ...' optimiser targets (HarmBench or AdvBench)."""
    path = SOURCES[name].paths[-1]
    data = json.loads(_text(mirror, name, path))
    return list(data.values()) if isinstance(data, dict) else [r["target"] for r in data]


def refusals(mirror: Path) -> list[str]:
    """Refusals of harmful behaviours."""
    out: list[str] = []
    for path in SOURCES["refusals"].paths:
        out += [r["Safe_Response"] for r in _csv(mirror, "refusals", path)]
    return sorted(set(out))


def _hh_turns(mirror: Path) -> list[dict[str, str]]:
    raw = gzip.decompress(_show(mirror, "hh_redteam", SOURCES["hh_redteam"].paths[0]))
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


def hh_redteam(mirror: Path) -> list[str]:
    """First human turn of each red-team dialogue (unlabelled attempts: some are mild)."""
    out = []
    for rec in _hh_turns(mirror):
        m = re.search(r"Human: (.*?)\n\nAssistant:", rec["chosen"], re.DOTALL)
        if m:
            out.append(m.group(1).strip())
    return sorted(set(out))


def hh_responses(mirror: Path) -> tuple[list[str], list[str]]:
    """(rejected, chosen) first assistant replies of the red-team dialogues, where they differ."""
    rej, cho = [], []
    for rec in _hh_turns(mirror):
        a = re.search(r"Assistant: (.*?)(?:\n\nHuman:|$)", rec["rejected"], re.DOTALL)
        b = re.search(r"Assistant: (.*?)(?:\n\nHuman:|$)", rec["chosen"], re.DOTALL)
        if a and b and a.group(1) != b.group(1):
            rej.append(a.group(1).strip())
            cho.append(b.group(1).strip())
    return rej, cho


def selfinstruct(mirror: Path) -> list[str]:
    """Human-written instructions, with their input where there is one."""
    out = []
    for path in SOURCES["selfinstruct"].paths[:2]:
        for line in _text(mirror, "selfinstruct", path).splitlines():
            rec = json.loads(line)
            inp = rec["instances"][0].get("input", "") if rec.get("instances") else ""
            out.append(rec["instruction"] + (f"\n\n{inp}" if inp else ""))
    return out


def selfinstruct_answers(mirror: Path) -> list[str]:
    """Benign answers: human-written seed outputs and text-davinci-001/2/3's answers."""
    out = []
    for line in _text(mirror, "selfinstruct", SOURCES["selfinstruct"].paths[0]).splitlines():
        out += [i["output"] for i in json.loads(line)["instances"] if len(i["output"]) > 40]
    for path in SOURCES["selfinstruct"].paths[2:]:
        for line in _text(mirror, "selfinstruct", path).splitlines():
            rec = json.loads(line)
            if len(rec.get("prediction", "")) > 40:
                out.append(rec["prediction"].strip())
    return sorted(set(out))


T0_FILES = (
    "adversarial_qa_dbert_generate_question",
    "ag_news_classify",
    "amazon_polarity_Is_this_review",
    "app_reviews_categorize_rating_using_review",
    "cnn_dailymail_3.0.0_write_an_outline",
    "common_gen_Given_concepts_type_2",
    "commonsense_qa_answer_given_question_without_options",
    "cosmos_qa_context_answer_to_question",
    "dbpedia_14_given_list_what_category_does_the_paragraph_belong_to",
    "glue_qqp_duplicate",
    "imdb_Movie_Expressed_Sentiment",
    "multi_news_summarize",
    "quoref_What_Is_The_Answer",
    "ropes_plain_no_background",
)


def chatgpt_prompts(mirror: Path) -> list[str]:
    """Benign role-play prompts ("I want you to act as a travel guide ...")."""
    import csv as _csv_mod

    _csv_mod.field_size_limit(10**8)
    rows = _csv(mirror, "chatgpt_prompts", SOURCES["chatgpt_prompts"].paths[0])
    return [r["prompt"] for r in rows if 20 < len(r["prompt"]) < 3000]


def t0(mirror: Path, per_file: int = 250, seed: int = 0) -> list[str]:
    """P3 prompts from the files above (benign prompts over real text)."""
    rng = random.Random(seed)
    gitdir = mirror / "yizhongw+self-instruct" / "repo"
    folder = SOURCES["t0"].paths[0]
    listing = subprocess.run(
        ["git", "-C", str(gitdir), "ls-tree", "--name-only", SOURCES["t0"].commit, folder],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    out = []
    for stem in T0_FILES:
        match = [p for p in listing if Path(p).stem.startswith(stem)]
        if not match:
            continue
        lines = _text(mirror, "t0", match[0]).splitlines()
        for line in rng.sample(lines, min(per_file, len(lines))):
            out.append(json.loads(line)["prompt"].strip())
    return out


def ewt(mirror: Path) -> list[str]:
    """Human-written web sentences of at least four words."""
    out = []
    for path in SOURCES["ewt"].paths:
        out += [s for _, s in _conllu_sentences(_text(mirror, "ewt", path))]
    return [s for s in out if len(s.split()) >= 4]


def gum_howto(mirror: Path, per_doc: int = 6) -> list[str]:
    """wikiHow passages of GUM: consecutive sentences joined, `per_doc` sentences each."""
    docs: dict[str, list[str]] = {}
    for path in SOURCES["gum_howto"].paths:
        for doc, s in _conllu_sentences(_text(mirror, "gum_howto", path)):
            if "whow" in doc:
                docs.setdefault(doc, []).append(s)
    out = []
    for sents in docs.values():
        for i in range(0, len(sents), per_doc):
            out.append(" ".join(sents[i : i + per_doc]))
    return out


def tweets(mirror: Path, source: str = "tweets") -> list[str]:
    """Tweets: TweetEval's emotion and irony test sets (`tweets`) or train sets (`tweets_tune`)."""
    out = []
    for path in SOURCES[source].paths:
        out += [t.strip() for t in _text(mirror, source, path).splitlines() if t.strip()]
    return out


def foreign(mirror: Path, sources: tuple[str, ...] = ("ud_de", "ud_fr")) -> list[str]:
    """German and French sentences: UD test sets, or dev sets (`("ud_de_dev", "ud_fr_dev")`)."""
    out = []
    for name in sources:
        out += [s for _, s in _conllu_sentences(_text(mirror, name, SOURCES[name].paths[0]))]
    return [s for s in out if len(s.split()) >= 5]


def gptfuzz(per_template: int = 5, seed: int = 0) -> tuple[list[str], list[str]]:
    """(filled GPTFuzz templates, the harmful questions) from the shared data folder."""
    with (SHARED / "gptfuzz_templates/GPTFuzzer.csv").open(encoding="utf-8") as fh:
        templates = [r["text"] for r in csv.DictReader(fh)]
    with (SHARED / "gptfuzz_templates/question_list.csv").open(encoding="utf-8") as fh:
        questions = [r["text"] for r in csv.DictReader(fh)]
    rng = random.Random(seed)
    filled = [
        t.replace("[INSERT PROMPT HERE]", q)
        for t in templates
        for q in rng.sample(questions, per_template)
    ]
    return filled, questions


def xstest() -> tuple[list[str], list[str]]:
    """(safe, unsafe) XSTest prompts from the shared data folder (eval only)."""
    with (SHARED / "xstest/xstest_prompts.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return (
        [r["prompt"] for r in rows if r["label"] == "safe"],
        [r["prompt"] for r in rows if r["label"] == "unsafe"],
    )


def code_snippets(n: int = 1000, seed: int = 0, part: int = 1) -> list[str]:
    """Lines and 4-line snippets of the Python standard library on this machine (hard negatives):
    `part` 1 (odd files, evaluation) or 0 (even files, tuning)."""
    import sysconfig

    rng = random.Random(seed)
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[part::2]
    # this.py is the Zen of Python in rot13: obfuscated text, not code (R01 decodes it).
    files = [f for f in files if f.name != "this.py"]
    lines: list[list[str]] = []
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace").splitlines()
        lines.append([ln for ln in text if len(ln.strip()) >= 25])
    out = []
    while len(out) < n:
        body = rng.choice(lines)
        if len(body) < 5:
            continue
        i = rng.randrange(len(body) - 4)
        out.append(body[i].strip() if rng.random() < 0.5 else "\n".join(body[i : i + 4]))
    return out


def log_lines(n: int = 1000, seed: int = 0, part: int = 1) -> list[str]:
    """Real log lines of this machine (dpkg, apt, alternatives) (hard negatives): `part` 1 (odd
    lines, evaluation) or 0 (even lines, tuning)."""
    rng = random.Random(seed)
    out: list[str] = []
    for p in ("/var/log/dpkg.log", "/var/log/apt/history.log", "/var/log/alternatives.log"):
        path = Path(p)
        if path.exists():
            out += [ln for ln in path.read_text(errors="replace").splitlines() if len(ln) > 20]
    out = out[part::2]
    return rng.sample(out, min(n, len(out)))


def urls_and_hashes(mirror: Path, n: int = 500, seed: int = 0) -> list[str]:
    """Sentences carrying URLs (from the fetched READMEs) and digests/UUIDs (hard negatives)."""
    import hashlib
    import uuid

    rng = random.Random(seed)
    found: set[str] = set()
    for name in ("advbench", "harmbench", "deepinception", "selfinstruct", "ewt", "tweets"):
        readme = _text(mirror, name, "README.md")
        found.update(re.findall(r"https?://[^\s)\]>\"']+", readme))
    links = sorted(found)
    out = []
    for i in range(n):
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        kind = i % 4
        if kind == 0:
            out.append(f"See {rng.choice(links)} for details")
        elif kind == 1:
            out.append(f"sha256 {digest}  model.safetensors")
        elif kind == 2:
            out.append(
                f"commit {digest[:40]} merged; request id {uuid.UUID(int=rng.getrandbits(128))}"
            )
        else:
            out.append(f"{rng.choice(links)} {rng.choice(links)} md5={digest[:32]}")
    return out


def piqa(mirror: Path, split: str = "valid") -> list[tuple[str, str]]:
    """(goal, solution) of PIQA: `valid` (labelled: the right solution) or `test` (the first)."""
    if split == "valid":
        rows = _text(mirror, "piqa", SOURCES["piqa"].paths[0]).splitlines()
        labels = _text(mirror, "piqa", SOURCES["piqa"].paths[1]).split()
    else:
        rows = _text(mirror, "piqa", SOURCES["piqa"].paths[2]).splitlines()
        labels = ["0"] * len(rows)
    out = []
    for line, label in zip(rows, labels, strict=True):
        rec = json.loads(line)
        goal, sol = rec["goal"].strip(), rec[f"sol{int(label) + 1}"].strip()
        if len(goal) > 12 and len(sol) > 12:
            out.append((goal, sol))
    return out


def _detokenise(s: str) -> str:
    s = re.sub(r" ([,.;:!?%)\]]|'s|n't|'re|'ll|'ve|'d|'m)", r"\1", s)
    s = re.sub(r"([(\[$]) ", r"\1", s)
    return s.replace(" '' ", '" ').replace("`` ", '"')


def wikisplit(mirror: Path, n: int = 5000, seed: int = 0) -> list[str]:
    """Wikipedia sentences of wiki-split's tune file, detokenised."""
    rng = random.Random(seed)
    lines = _text(mirror, "wikisplit", SOURCES["wikisplit"].paths[0]).splitlines()
    return [_detokenise(x.split("\t")[0]) for x in rng.sample(lines, min(n, len(lines)))]


def pair(mirror: Path, min_score: int = 1) -> tuple[list[str], list[str]]:
    """(PAIR prompts, target responses): unique attacker prompts whose GPT judge score (1-10)
    reached `min_score`, the attacker's unfilled placeholders ("[new prompt]") left out."""
    csv.field_size_limit(10**8)
    rows = _csv(mirror, "pair", SOURCES["pair"].paths[0])
    seen: dict[str, str] = {}
    for r in rows:
        p = r["Prompt"].strip()
        if int(r["Score"]) >= min_score and len(p) >= 40 and not re.fullmatch(r"\[[^\]]*\]", p):
            seen.setdefault(p, r["Response"].strip())
    return list(seen), list(seen.values())


def pap(mirror: Path) -> list[str]:
    """The published persuasive adversarial prompts (PAP) of the in-context examples."""
    src = _text(mirror, "pap", SOURCES["pap"].paths[0])
    found = re.findall(
        r"Mutated Adversarial Prompt \(with the same harmful intention\): (.+?)\n", src
    )
    return sorted({f.strip() for f in found})
