"""ServerApp: FedAvg over five clients, wrapped by fmfl-audit's recorder.

The recorder writes `<out-dir>/manifest.yaml` and the files it names when the run ends; scan it
with `fmfl-audit scan <out-dir>/manifest.yaml`.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, Strategy

from fmfl_audit.integrations.flower import AuditedStrategy, ClientInfo, FMInfo
from fmfl_flower_example.task import make_model

NUM_CLIENTS = 5
# What only the operator knows: client 0 runs its own FM copy on a big server; the others share
# a quota-limited FM API.
CLIENTS = {
    f"client-{i}": (
        ClientInfo(tier="abundant", fm_access="local")
        if i == 0
        else ClientInfo(tier="constrained", fm_access="shared-api")
    )
    for i in range(NUM_CLIENTS)
}
FM = FMInfo(name="fm-stand-in", placement="server", roles=("synthetic-data",))


def build_strategy(out_dir: str, inner: Strategy | None = None) -> AuditedStrategy:
    """FedAvg on every client each round (no federated evaluation), recorded into `out_dir`."""
    # FedAvg sizes a round's sample from the nodes connected *before* it waits for
    # `min_available_nodes`: on a slow start round 1 would train on the first few nodes only.
    # `min_train_nodes` makes every round sample all of them.
    inner = inner or FedAvg(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_available_nodes=NUM_CLIENTS,
        min_train_nodes=NUM_CLIENTS,
    )
    return AuditedStrategy(
        inner,
        out_dir,
        deployment_name="flower-example",
        task="tabular-classification",
        clients=CLIENTS,
        fm=FM,
        overwrite=True,
    )


def make_server_app(
    *, out_dir: str = "audit-run", num_rounds: int = 5, inner: Strategy | None = None
) -> ServerApp:
    """A ServerApp; the run config (`flwr run --run-config`) overrides these defaults."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        cfg = context.run_config
        strategy = build_strategy(str(cfg.get("out-dir", out_dir)), inner)
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(make_model().state_dict()),
            num_rounds=int(cfg.get("num-server-rounds", num_rounds)),
        )

    return app


app = make_server_app()
