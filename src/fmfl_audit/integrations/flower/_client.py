"""The ClientApp side: a mod that tells the recorder who the client is and what privacy mods run.

The server only sees node ids, which change from run to run; the stable client id lives in the
node config (`partition-id` in simulations, any key a deployment sets). The mod adds a small
ConfigRecord (`fmfl-audit`) to every successful train reply with that id, the tier and FM access
mode when the node config declares them, and the privacy mods the ClientApp was built with
(`audit_mods`). A ConfigRecord is ignored by Flower's strategies, which aggregate only the
ArrayRecord and the MetricRecord of a reply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flwr.app import ConfigRecord, Context, Message

RECORD = "fmfl-audit"
PRIVACY_MODS = frozenset(
    {"LocalDpMod", "fixedclipping_mod", "adaptiveclipping_mod", "secaggplus_mod", "secagg_mod"}
)

Mod = Callable[[Message, Context, Callable[[Message, Context], Message]], Message]


def _mod_name(mod: Any) -> str:
    return getattr(mod, "__name__", None) or type(mod).__name__


def describe_mods(mods: Sequence[Any]) -> dict[str, Any]:
    """The privacy-relevant settings of ClientApp mods, as ConfigRecord values."""
    names = [n for n in (_mod_name(m) for m in mods) if n in PRIVACY_MODS]
    out: dict[str, Any] = {"privacy-mods": names} if names else {}
    for m in mods:
        if _mod_name(m) == "LocalDpMod":
            for attr in ("clipping_norm", "sensitivity", "epsilon", "delta"):
                out[f"local-dp-{attr.replace('_', '-')}"] = float(getattr(m, attr))
    return out


def make_client_mod(
    *,
    client_id_key: str = "partition-id",
    client_id_format: str = "client-{}",
    tier_key: str = "fmfl-tier",
    fm_access_key: str = "fmfl-fm-access",
    mods: Sequence[Any] = (),
) -> Mod:
    """A mod reporting the client id (`node_config[client_id_key]`, formatted) to the recorder.

    A node config key `client-id` is used as is when present. `mods`: the ClientApp's other mods,
    whose privacy settings are reported (use `audit_mods` to build the list).
    """
    extra = describe_mods(mods)

    def fmfl_audit_mod(msg: Message, ctxt: Context, call_next: Any) -> Message:
        reply: Message = call_next(msg, ctxt)
        if reply.has_error() or msg.metadata.message_type.split(".")[0] != "train":
            return reply
        conf = ctxt.node_config
        if "client-id" in conf:
            cid = str(conf["client-id"])
        elif client_id_key in conf:
            cid = client_id_format.format(conf[client_id_key])
        else:
            cid = ""  # the recorder falls back to the node id
        info: dict[str, Any] = {"client-id": cid, **extra}
        if tier_key in conf:
            info["tier"] = str(conf[tier_key])
        if fm_access_key in conf:
            info["fm-access"] = str(conf[fm_access_key])
        reply.content[RECORD] = ConfigRecord(info)
        return reply

    return fmfl_audit_mod


fmfl_audit_mod = make_client_mod()
"""The default mod: client ids `client-<partition-id>` (or the node config's `client-id`)."""


def audit_mods(*mods: Any, **kwargs: Any) -> list[Any]:
    """`[reporting mod, *mods]`: the reporting mod outermost, so it sees the final reply, and
    told which privacy mods (LocalDpMod, clipping, SecAgg+) the ClientApp runs."""
    return [make_client_mod(mods=mods, **kwargs), *mods]
