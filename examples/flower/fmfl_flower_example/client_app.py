"""ClientApp: local training, plus the FM calls a client logs for the audit.

`fmfl_audit_mod` reports the client's stable id (`client-<partition-id>`) to the recorder. The FM
here is a stand-in (`ask_fm` returns a templated sentence) so the example runs offline; replace it
with your FM client and keep the two `FMInteractionLog` calls around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fmfl_audit.integrations.flower import fmfl_audit_mod
from fmfl_audit.integrations.fm_log import FMInteractionLog
from fmfl_flower_example.task import evaluate, load_partition, make_model, train

TOPICS = ("the park", "the river", "the market", "the school")


def ask_fm(prompt: str, label: int) -> str:
    """Stand-in for a foundation-model call (replace with your FM client)."""
    topic = prompt.rsplit(" about ", 1)[-1].rstrip(".")
    mood = "happy" if label else "calm"
    return f"A {mood} afternoon at {topic}, where everyone took a short walk."


def log_fm_calls(out_dir: str, client_id: str, rnd: int) -> None:
    """Ask the FM for a few labelled sentences and log prompts and answers for the audit."""
    fm = FMInteractionLog.for_client(out_dir, client_id)
    for i, topic in enumerate(TOPICS):
        label = i % 2
        prompt = f"Write one sentence about {topic}."
        prompt_id = fm.prompt(prompt, round=rnd)
        fm.output(ask_fm(prompt, label), label=label, prompt_id=prompt_id)


def make_client_app(
    *,
    out_dir: str = "audit-run",
    dropout_partition: int = 4,
    dropout_rounds: tuple[int, ...] = (2, 3, 4),
    abundant_partition: int = 0,
    mods: Sequence[Any] = (fmfl_audit_mod,),
) -> ClientApp:
    """A ClientApp; the run config (`flwr run --run-config`) overrides these defaults."""
    app = ClientApp(mods=list(mods))

    @app.train()
    def train_fn(msg: Message, context: Context) -> Message:
        cfg = context.run_config
        pid = int(context.node_config["partition-id"])
        rnd = int(msg.content["config"]["server-round"])
        drops = str(cfg.get("dropout-rounds", ",".join(map(str, dropout_rounds)))).split(",")
        if pid == int(cfg.get("dropout-partition", dropout_partition)) and str(rnd) in drops:
            raise ConnectionError(f"client-{pid} lost its connection in round {rnd}")
        if rnd == 1:
            log_fm_calls(str(cfg.get("out-dir", out_dir)), f"client-{pid}", rnd)
        x, y = load_partition(pid, int(cfg.get("abundant-partition", abundant_partition)))
        net = make_model()
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        loss = train(net, x, y, epochs=int(cfg.get("local-epochs", 2)), lr=0.1)
        content = RecordDict(
            {
                "arrays": ArrayRecord(net.state_dict()),
                "metrics": MetricRecord({"num-examples": len(x), "train-loss": loss}),
            }
        )
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate_fn(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        x, y = load_partition(pid, int(context.run_config.get("abundant-partition", 0)))
        net = make_model()
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        loss, accuracy = evaluate(net, x, y)
        metrics = {"num-examples": len(x), "eval-loss": loss, "eval-accuracy": accuracy}
        return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)

    return app


app = make_client_app()
