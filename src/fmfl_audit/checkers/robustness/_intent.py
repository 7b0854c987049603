"""Intent layer of FMFL-R01/R02: a linear model over hashed word and character n-grams.

The model recognises what a text asks for (R01: a harmful request, plain or disguised as
role-play, fiction, research or a nested task) or what it delivers (R02: compliance with a harmful
request), whatever wrapper it comes in. It ships in `rules/jailbreak/` as two non-executable files:
`<name>.json` (the feature parameters, the decision threshold, the training summary) and
`<name>.npz` (the weight vector, read with `allow_pickle=False`). Features are scikit-learn's
`HashingVectorizer` (MurmurHash3 with its fixed seed, no fitted state), so the parameters stored
in the JSON rebuild the exact feature space; nothing is pickled. Training lives in
`benchmarks/train_intent.py` (the exact command is in the JSON).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmfl_audit.errors import RulePackError

if TYPE_CHECKING:
    import numpy as np

HEAD_CHARS = 3000
TAIL_CHARS = 1500
"""Long prompts are cut to their head and tail: templates put the request at either end."""


@dataclass(frozen=True)
class FeatureSpec:
    """The hashed feature space: word n-grams then character n-grams, each l2-normalised."""

    word_features: int = 2**18
    word_ngrams: tuple[int, int] = (1, 2)
    char_features: int = 2**18
    char_ngrams: tuple[int, int] = (3, 5)

    def vectorizers(self) -> list[Any]:
        """The two stateless HashingVectorizers."""
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"alternate_sign": False, "binary": True, "norm": "l2", "lowercase": True}
        return [
            HashingVectorizer(
                analyzer="word",
                ngram_range=self.word_ngrams,
                n_features=self.word_features,
                token_pattern=r"(?u)\b\w+\b",
                **common,
            ),
            HashingVectorizer(
                analyzer="char_wb",
                ngram_range=self.char_ngrams,
                n_features=self.char_features,
                **common,
            ),
        ]

    def transform(self, texts: list[str]) -> Any:
        """Sparse feature matrix (rows: texts)."""
        import scipy.sparse as sp

        prepared = [prepare(t) for t in texts]
        return sp.hstack([v.transform(prepared) for v in self.vectorizers()], format="csr")

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "word_features": self.word_features,
            "word_ngrams": list(self.word_ngrams),
            "char_features": self.char_features,
            "char_ngrams": list(self.char_ngrams),
        }


def prepare(text: str) -> str:
    """NFKC, head and tail of long texts."""
    t = unicodedata.normalize("NFKC", text)
    if len(t) > HEAD_CHARS + TAIL_CHARS:
        t = t[:HEAD_CHARS] + " " + t[-TAIL_CHARS:]
    return t


@dataclass(frozen=True)
class LinearTextModel:
    """Logistic model: p = sigmoid(features @ coef + intercept); flagged when p >= threshold."""

    name: str
    spec: FeatureSpec
    coef: np.ndarray
    intercept: float
    threshold: float
    meta: dict[str, Any]

    def predict(self, texts: list[str]) -> np.ndarray:
        """Probabilities of the positive class (vectorised over the batch)."""
        import numpy as np

        if not texts:
            return np.zeros(0)
        z = self.spec.transform(texts) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=float)

    def save(self, folder: Path) -> tuple[Path, Path]:
        """Write `<name>.json` and `<name>.npz` (float32 weights, compressed)."""
        import numpy as np

        folder.mkdir(parents=True, exist_ok=True)
        js, npz = folder / f"{self.name}.json", folder / f"{self.name}.npz"
        doc = {
            "name": self.name,
            "format": "fmfl-linear-text-v1",
            "features": self.spec.as_dict(),
            "intercept": self.intercept,
            "threshold": self.threshold,
            **self.meta,
        }
        js.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        np.savez_compressed(npz, coef=self.coef.astype(np.float32))
        return js, npz


def load_model(folder: Path, name: str) -> LinearTextModel:
    """Load `<name>.json` + `<name>.npz` from `folder`. RulePackError when missing or invalid."""
    import numpy as np

    js, npz = folder / f"{name}.json", folder / f"{name}.npz"
    try:
        doc = json.loads(js.read_text(encoding="utf-8"))
        if doc.get("format") != "fmfl-linear-text-v1":
            raise ValueError(f"unknown format {doc.get('format')!r}")
        f = doc["features"]
        spec = FeatureSpec(
            word_features=int(f["word_features"]),
            word_ngrams=(int(f["word_ngrams"][0]), int(f["word_ngrams"][1])),
            char_features=int(f["char_features"]),
            char_ngrams=(int(f["char_ngrams"][0]), int(f["char_ngrams"][1])),
        )
        with np.load(npz, allow_pickle=False) as arrays:
            coef = np.asarray(arrays["coef"], dtype=np.float64)
        if coef.shape != (spec.word_features + spec.char_features,):
            raise ValueError(f"weights of shape {coef.shape} do not match the features")
    except (OSError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise RulePackError(f"{js}: invalid intent model ({exc})") from None
    meta = {k: v for k, v in doc.items() if k not in {"name", "format", "features"}}
    return LinearTextModel(
        name=name,
        spec=spec,
        coef=coef,
        intercept=float(doc["intercept"]),
        threshold=float(doc["threshold"]),
        meta={k: v for k, v in meta.items() if k not in {"intercept", "threshold"}},
    )


def train(
    texts: list[str],
    labels: list[int],
    *,
    name: str,
    c: float = 4.0,
    spec: FeatureSpec | None = None,
    features: Any = None,
) -> LinearTextModel:
    """Fit a class-balanced logistic regression (liblinear); threshold 0.5 until tuned.
    `features`: the rows of `spec.transform(texts)` when the caller already has them."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    spec = spec or FeatureSpec()
    x = spec.transform(texts) if features is None else features
    clf = LogisticRegression(C=c, class_weight="balanced", solver="liblinear", max_iter=200)
    clf.fit(x, np.asarray(labels))
    return LinearTextModel(
        name=name,
        spec=spec,
        coef=clf.coef_[0].astype(np.float64),
        intercept=float(clf.intercept_[0]),
        threshold=0.5,
        meta={},
    )
