"""The version-1 deployment manifest (DESIGN.md) as frozen Pydantic models.

Paths are resolved against the manifest's folder through the validation context (`base_dir`), and
must exist when `check_files` is set in the context (the default for `load_manifest`).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fmfl_audit.models import Grade, Severity

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*-[A-Z]+[0-9]+$")
DATA_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


class StrictModel(BaseModel):
    """Everything a user writes: unknown keys are errors, values are frozen after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


MAX_PATH_SHOWN = 120
"""Paths longer than this are cut in error messages (an over-long path is itself the problem)."""


def shown_path(value: object) -> str:
    """A path for an error message: cut when over-long, lone surrogates spelled out."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > MAX_PATH_SHOWN:
        text = f"{text[: MAX_PATH_SHOWN // 2]}…{text[-MAX_PATH_SHOWN // 4 :]} ({len(text)} chars)"
    return text


def _resolve(value: Path, info: ValidationInfo, *, kind: str) -> Path:
    ctx = info.context or {}
    base = ctx.get("base_dir")
    shown = shown_path(value)
    try:
        path = Path(value).expanduser()
    except RuntimeError:
        raise ValueError(f"cannot expand the home folder in {shown}: no such user") from None
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    if not ctx.get("check_files", False):
        return path
    try:
        if kind == "dir" and not path.is_dir():
            if path.exists():
                raise ValueError(f"expected a folder, found a file: {shown}")
            raise ValueError(f"folder not found: {shown}")
        if kind == "file" and not path.is_file():
            if path.is_dir():
                raise ValueError(f"expected a file, found a folder: {shown}")
            raise ValueError(f"file not found: {shown}")
        if kind == "any" and not path.exists():
            raise ValueError(f"path not found: {shown}")
    except OSError as exc:
        # ENAMETOOLONG, ELOOP, EACCES...: the path cannot be used; say why, never crash.
        raise ValueError(f"cannot use path {shown}: {exc.strerror or exc}") from None
    return path


def _str_to_source(value: Any) -> Any:
    return {"path": value} if isinstance(value, (str, Path)) else value


class DataSource(StrictModel):
    """A JSONL, CSV or Parquet file of records. A bare string is shorthand for `{path: ...}`."""

    path: Path = Field(description="File path, relative to the manifest's folder.")
    format: Literal["jsonl", "csv", "parquet"] | None = Field(
        default=None, description="File format; inferred from the suffix when omitted."
    )
    text_field: str = Field(default="text", description="Column holding the text.")
    label_field: str = Field(default="label", description="Column holding the label, if any.")
    id_field: str = Field(default="id", description="Column holding a record id, if any.")
    sensitive_features: tuple[str, ...] = Field(
        default=(), description="Columns holding sensitive features (e.g. gender)."
    )

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info, kind="file")

    @model_validator(mode="after")
    def _known_format(self) -> DataSource:
        if self.format is None and self.path.suffix.lower() not in DATA_SUFFIXES:
            raise ValueError(
                f"cannot tell the format of {self.path.name!r}: use a .jsonl, .csv or .parquet "
                "suffix or set `format`"
            )
        return self

    @property
    def resolved_format(self) -> str:
        """The declared format, else the one implied by the suffix."""
        return self.format or DATA_SUFFIXES[self.path.suffix.lower()]


DataRef = Annotated[
    DataSource,
    BeforeValidator(_str_to_source, json_schema_input_type=str | dict[str, Any]),
]


class Checkpoint(StrictModel):
    """A model checkpoint: a Hugging Face folder or a single weights file."""

    path: Path = Field(description="Folder or file, relative to the manifest's folder.")
    sha256: str | None = Field(
        default=None,
        description="Pinned digest: sha256 of the file, or the folder digest (see README).",
    )

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info, kind="any")

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError("sha256 must be 64 lowercase hexadecimal characters")
        return value


CheckpointRef = Annotated[
    Checkpoint,
    BeforeValidator(_str_to_source, json_schema_input_type=str | dict[str, Any]),
]


def _resolve_file(value: Path, info: ValidationInfo) -> Path:
    return _resolve(value, info, kind="file")


class DeploymentSection(StrictModel):
    """What is being audited."""

    name: str = Field(min_length=1, description="Deployment name, shown in reports.")
    task: str | None = Field(default=None, description="The FL task, e.g. text-classification.")
    description: str | None = None


class Provider(StrictModel):
    """Who supplies the foundation model, and on what data-handling terms."""

    name: str = Field(min_length=1)
    third_party: bool = Field(default=False, description="Run by someone outside the deployment.")
    isolation: Literal["per-client", "shared", "none"] | None = Field(
        default=None, description="Whether the provider isolates clients' prompts and outputs."
    )
    retention_days: int | None = Field(
        default=None, ge=0, description="How long the provider keeps prompts; null if unknown."
    )
    trains_on_prompts: bool | None = Field(
        default=None, description="Whether the provider may train on prompts; null if unknown."
    )


class SystemPrompt(StrictModel):
    """The deployed system prompt and what it was approved as."""

    path: Path = Field(description="The deployed system prompt (text file).")
    approved_sha256: str | None = Field(default=None, description="sha256 of the approved prompt.")
    approved_path: Path | None = Field(default=None, description="The approved prompt (file).")

    _resolve_path = field_validator("path", "approved_path")(_resolve_file)

    @field_validator("approved_sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError("approved_sha256 must be 64 lowercase hexadecimal characters")
        return value


FMRole = Literal["synthetic-data", "distillation", "initialization"]


def _resolve_output(value: Path, info: ValidationInfo) -> Path:
    """A file the tool writes (it need not exist yet), relative to the manifest's folder."""
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    return Path(base) / path if base is not None and not path.is_absolute() else path


_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ProbeSuiteName = Literal["system-prompt", "backdoor", "safety", "counterfactual", "memorization"]
DEFAULT_PROMPTS = 12
PROBE_SUITES: tuple[ProbeSuiteName, ...] = (
    "system-prompt",
    "backdoor",
    "safety",
    "counterfactual",
    "memorization",
)


class Sampling(StrictModel):
    """Sampling settings sent with every probe request (a suite may ask for greedy decoding)."""

    temperature: float = Field(default=0.7, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int = Field(default=64, ge=1, le=8192, description="Completion tokens at most.")
    seed: int | None = Field(
        default=0,
        description="Base seed: each probe sends it plus an offset derived from its id; null "
        "sends none.",
    )


class Endpoint(StrictModel):
    """An OpenAI-compatible chat API (`/v1/chat/completions`) serving the FM: vLLM, llama.cpp
    server, Ollama, `transformers serve`, or a hosted API. Only `fmfl-audit probe` contacts it."""

    base_url: str = Field(description="API base, e.g. http://127.0.0.1:8000/v1.")
    model: str = Field(min_length=1, description="The `model` field of each request.")
    api_key_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the API key (never the key).",
    )
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Per-request timeout.")
    requests_per_minute: float | None = Field(
        default=None, gt=0, description="Rate limit; null: no limit."
    )
    max_concurrency: int = Field(default=4, ge=1, le=64, description="Requests in flight.")
    max_retries: int = Field(
        default=4, ge=0, le=10, description="Retries of a timed-out, 429 or 5xx request."
    )
    sampling: Sampling = Field(default_factory=Sampling)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _URL.match(value):
            raise ValueError(f"not an http(s) URL: {value!r} (e.g. http://127.0.0.1:8000/v1)")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "api_key_env names an environment variable (e.g. FM_API_KEY); never put the key "
                "itself in the manifest"
            )
        return value

    @property
    def chat_url(self) -> str:
        """The one URL `probe` sends requests to."""
        return f"{self.base_url}/chat/completions"


class ProbeSettings(StrictModel):
    """What `fmfl-audit probe` sends (see the README's Probing section)."""

    suites: tuple[ProbeSuiteName, ...] = Field(default=PROBE_SUITES, min_length=1)
    prompts_per_suite: int | dict[ProbeSuiteName, int] = Field(
        default=DEFAULT_PROMPTS,
        description="Prompts drawn (seeded) from each suite's data; a mapping sets it per suite "
        f"(suites it leaves out: {DEFAULT_PROMPTS}).",
    )
    samples: int = Field(default=3, ge=1, le=100, description="Samples per sampled probe.")
    trigger_suspects: tuple[str, ...] = Field(
        default=(), description="Backdoor triggers to test besides those FMFL-R06 mines."
    )
    max_triggers: int = Field(default=5, ge=0, le=50, description="Mined triggers tested.")
    counterfactual_axes: tuple[str, ...] = Field(
        default=("gender", "race_ethnicity", "religion", "age"),
        description="`gender` (swap lists) and HolisticBias axes.",
    )
    canaries: DataRef | None = Field(
        default=None, description="Canaries clients planted in FM prompts (FMFL-P03 format)."
    )
    records: int = Field(default=20, ge=1, description="Sensitive records probed (seeded).")
    prefix_words: int = Field(default=8, ge=2, le=200)
    suffix_words: int = Field(default=8, ge=1, le=200)
    send_system_prompt: bool = Field(
        default=True, description="Send the approved system prompt with every probe."
    )
    seed: int = Field(default=0, description="Seed of the prompt draws.")

    @field_validator("suites")
    @classmethod
    def _unique_suites(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a suite is listed twice")
        return value

    @field_validator("prompts_per_suite")
    @classmethod
    def _counts(cls, value: int | dict[str, int]) -> int | dict[str, int]:
        counts = value.values() if isinstance(value, dict) else [value]
        if not all(1 <= n <= 1000 for n in counts):
            raise ValueError("prompts per suite must be 1 to 1000")
        return value

    def prompts_for(self, suite: str) -> int:
        """How many prompts `suite` draws."""
        if isinstance(self.prompts_per_suite, int):
            return self.prompts_per_suite
        return self.prompts_per_suite.get(suite, DEFAULT_PROMPTS)  # type: ignore[call-overload]


class FoundationModel(StrictModel):
    """The foundation model integrated into the federation."""

    name: str = Field(min_length=1)
    placement: Literal["server", "client", "third-party-api"] = "server"
    provider: Provider | None = None
    roles: tuple[FMRole, ...] = ()
    shared_across_clients: bool = True
    checkpoint: CheckpointRef | None = None
    reference_checkpoint: CheckpointRef | None = Field(
        default=None, description="The published base checkpoint, for tamper checks."
    )
    system_prompt: SystemPrompt | None = None
    sensitive_data: DataRef | None = Field(
        default=None, description="Server-side records that must not leak to clients."
    )
    teacher_predictions: DataRef | None = Field(
        default=None,
        description="Teacher (distillation) outputs on client holdouts: label, prob, client_id.",
    )
    endpoint: Endpoint | None = Field(
        default=None, description="The FM's live API, probed by `fmfl-audit probe`."
    )
    reference_endpoint: Endpoint | None = Field(
        default=None, description="A trusted copy of the published model (differential probing)."
    )
    probe_transcript: Path | None = Field(
        default=None, description="JSONL transcript `probe` writes and the rules read."
    )
    probe: ProbeSettings = Field(default_factory=ProbeSettings)

    _resolve_transcript = field_validator("probe_transcript")(_resolve_output)

    @model_validator(mode="after")
    def _probe_parts(self) -> FoundationModel:
        if self.reference_endpoint is not None and self.endpoint is None:
            raise ValueError("reference_endpoint needs endpoint (the endpoint under audit)")
        if self.endpoint is not None and self.probe_transcript is None:
            raise ValueError(
                "endpoint needs probe_transcript: the file `fmfl-audit probe` writes and the "
                "rules read"
            )
        return self


class DifferentialPrivacy(StrictModel):
    """The DP budget of the federation."""

    epsilon: float = Field(gt=0)
    delta: float = Field(ge=0, lt=1)
    mechanism: str | None = Field(default=None, description="e.g. DP-FedAvg, user-level.")


Aggregator = Literal[
    "fedavg", "fedprox", "krum", "multi-krum", "trimmed-mean", "median", "norm-clipping"
]


class Federation(StrictModel):
    """How clients are aggregated."""

    aggregator: Aggregator = "fedavg"
    rounds: int | None = Field(default=None, ge=1)
    differential_privacy: DifferentialPrivacy | None = None
    secure_aggregation: bool = False
    participation_log: DataRef | None = Field(
        default=None, description="CSV/JSONL: round, client_id, num_samples, weight."
    )


class Resources(StrictModel):
    """A client's resources."""

    tier: Literal["abundant", "constrained"] = "constrained"
    fm_access: Literal["local", "shared-api"] = "shared-api"
    quota_per_round: int | None = Field(default=None, ge=0, description="FM API calls allowed.")


class Client(StrictModel):
    """One federated client and the artifacts it produced or holds."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    resources: Resources = Field(default_factory=Resources)
    prompts: DataRef | None = Field(default=None, description="What the client sent to the FM.")
    synthetic_data: DataRef | None = Field(default=None, description="What the FM returned.")
    private_sample: DataRef | None = Field(default=None, description="A sample of private data.")
    fingerprint: Path | None = Field(
        default=None, description="Privacy-preserving sketch of private data (`fingerprint`)."
    )
    holdout: DataRef | None = Field(default=None, description="Labelled holdout records.")
    update: Path | None = Field(
        default=None, description="The client's model update (safetensors)."
    )

    _resolve_path = field_validator("fingerprint", "update")(_resolve_file)

    @property
    def subject(self) -> str:
        """The subject string used in findings."""
        return f"client:{self.id}"


class PredictionsSource(StrictModel):
    """A file of model predictions with ground truth and sensitive features."""

    path: Path
    format: Literal["jsonl", "csv", "parquet"] | None = None
    y_true: str = Field(default="y_true", description="Column with the true label.")
    y_pred: str = Field(default="y_pred", description="Column with the predicted label.")
    score: str | None = Field(default=None, description="Column with the positive-class score.")
    sensitive_features: tuple[str, ...] = Field(
        default=(), description="Sensitive columns; defaults to evaluation.sensitive_features."
    )
    positive_label: str | int | bool = Field(default=1, description="The favourable outcome.")

    _resolve_path = field_validator("path")(_resolve_file)

    def as_source(self) -> DataSource:
        """This file as a generic data source (text not required)."""
        return DataSource.model_construct(
            path=self.path,
            format=self.format,
            text_field="text",
            label_field=self.y_true,
            id_field="id",
            sensitive_features=self.sensitive_features,
        )


class ModelSpec(StrictModel):
    """An FL model to audit (or a file of its predictions)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    kind: Literal["causal-lm", "sequence-classifier", "predictions"]
    checkpoint: CheckpointRef | None = None
    reference: str | None = Field(
        default=None,
        description="`foundation_model` or another model's name: the reference for calibrated "
        "membership inference.",
    )
    members: DataRef | None = None
    non_members: DataRef | None = None
    canaries: DataRef | None = None
    predictions: PredictionsSource | None = None
    trigger_suspects: tuple[str, ...] = Field(
        default=(), description="Suspected backdoor triggers to test (FMFL-R07)."
    )

    @model_validator(mode="after")
    def _needs_input(self) -> ModelSpec:
        if self.kind == "predictions" and self.predictions is None:
            raise ValueError("a model of kind 'predictions' needs `predictions`")
        if self.kind != "predictions" and self.checkpoint is None:
            raise ValueError(f"a model of kind {self.kind!r} needs `checkpoint`")
        return self

    @property
    def subject(self) -> str:
        """The subject string used in findings."""
        return f"model:{self.name}"


class Evaluation(StrictModel):
    """Evaluation data with sensitive features."""

    data: Path
    format: Literal["jsonl", "csv", "parquet"] | None = None
    text_field: str = "text"
    label_field: str = "label"
    id_field: str = "id"
    sensitive_features: tuple[str, ...] = ()

    _resolve_path = field_validator("data")(_resolve_file)

    def as_source(self) -> DataSource:
        """The evaluation file as a data source."""
        return DataSource.model_construct(
            path=self.data,
            format=self.format,
            text_field=self.text_field,
            label_field=self.label_field,
            id_field=self.id_field,
            sensitive_features=self.sensitive_features,
        )


class Waiver(StrictModel):
    """An accepted risk: a rule's findings on a subject, with a reason and an expiry."""

    rule: str = Field(description="Rule id, e.g. FMFL-F06.")
    subject: str = Field(
        min_length=1, description="Subject, e.g. `client:school-a`; `*` for every subject."
    )
    reason: str = Field(min_length=3)
    expires: dt.date

    @field_validator("rule")
    @classmethod
    def _rule_id(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise ValueError(f"not a rule id: {value!r} (expected e.g. FMFL-P01)")
        return value


class RuleOverride(StrictModel):
    """Per-rule settings a deployment may change without writing a pack."""

    enabled: bool | None = None
    severity: Severity | None = None
    weight: float | None = Field(default=None, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)


class Policy(StrictModel):
    """Rule packs, the gate and waivers."""

    packs: tuple[str, ...] = Field(
        default=("default",), description="Built-in pack names or paths to pack files/folders."
    )
    fail_on: Severity | None = Field(
        default=Severity.HIGH, description="Fail when an unwaived finding is at or above this."
    )
    fail_under: Grade | None = Field(
        default=Grade.C, description="Fail when the overall grade is below this."
    )
    min_coverage: float | None = Field(
        default=None, ge=0, le=1, description="Fail when overall coverage is below this."
    )
    fail_on_error: bool = Field(default=True, description="Fail when a rule errored.")
    fail_on_unreadable_inputs: bool = Field(
        default=True,
        description="Fail when a rule could not read enough of a data file: more than "
        "`max_malformed_share` of its records malformed, or none usable.",
    )
    fail_on_rules_not_rerun: bool = Field(
        default=True,
        description="With `scan --baseline`: fail when a rule that ran in the baseline was "
        "skipped, errored or not planned in this scan (its baseline findings were not checked, "
        "so they do not count as fixed).",
    )
    max_malformed_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Largest share of malformed records a data file may have before the rules "
        "reading it count as not run (skipped) and the gate fails (`fail_on_unreadable_inputs`).",
    )
    waivers: tuple[Waiver, ...] = ()
    waivers_file: Path | None = Field(default=None, description="YAML file with `waivers: [...]`.")
    rules: dict[str, RuleOverride] = Field(
        default_factory=dict, description="Per-rule overrides keyed by rule id."
    )

    _resolve_path = field_validator("waivers_file")(_resolve_file)

    @field_validator("rules")
    @classmethod
    def _rule_ids(cls, value: dict[str, RuleOverride]) -> dict[str, RuleOverride]:
        for key in value:
            if not _RULE_ID.match(key):
                raise ValueError(f"not a rule id: {key!r} (expected e.g. FMFL-P01)")
        return value


class Manifest(StrictModel):
    """A version-1 deployment manifest."""

    version: Literal[1] = Field(description="Manifest format version; only 1 exists.")
    deployment: DeploymentSection
    foundation_model: FoundationModel | None = None
    federation: Federation | None = None
    clients: tuple[Client, ...] = Field(description="The federated clients (at least one).")
    models: tuple[ModelSpec, ...] = ()
    evaluation: Evaluation | None = None
    policy: Policy = Field(default_factory=Policy)

    @field_validator("clients")
    @classmethod
    def _unique_clients(cls, value: tuple[Client, ...]) -> tuple[Client, ...]:
        # Checked here rather than with min_length so one bad client gives one message, not two.
        if not value:
            raise ValueError("at least one client is required")
        seen: set[str] = set()
        for c in value:
            if c.id in seen:
                raise ValueError(f"duplicate client id {c.id!r}")
            seen.add(c.id)
        return value

    @model_validator(mode="after")
    def _model_refs(self) -> Manifest:
        names = [m.name for m in self.models]
        if len(names) != len(set(names)):
            raise ValueError("model names must be unique")
        for m in self.models:
            if m.reference is None:
                continue
            if m.reference == "foundation_model":
                if self.foundation_model is None or self.foundation_model.checkpoint is None:
                    raise ValueError(
                        f"model {m.name!r}: reference 'foundation_model' needs "
                        "foundation_model.checkpoint"
                    )
            elif m.reference not in names or m.reference == m.name:
                raise ValueError(
                    f"model {m.name!r}: reference {m.reference!r} is neither 'foundation_model' "
                    "nor another model's name"
                )
        return self

    def client(self, client_id: str) -> Client:
        """The client with this id; KeyError when absent."""
        for c in self.clients:
            if c.id == client_id:
                return c
        raise KeyError(client_id)
