"""NVFlare client for the fmfl-audit importer fixture: a numpy least-squares model, one SGD step
per local sample; site-1 holds 10x the data of the others."""

import numpy as np
import nvflare.client as flare
from nvflare.app_common.abstract.fl_model import FLModel

SAMPLES = {"site-1": 200, "site-2": 20, "site-3": 20, "site-4": 20}


def main():
    flare.init()
    site = flare.get_site_name()
    rng = np.random.default_rng(int(site.split("-")[1]))
    n = SAMPLES[site]
    x = rng.normal(size=(n, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(scale=0.1, size=n)
    while flare.is_running():
        model = flare.receive()
        w = np.asarray(model.params["numpy_key"], dtype=np.float64)
        for xi, yi in zip(x, y, strict=True):
            w = w - 0.01 * (xi @ w - yi) * xi
        loss = float(np.mean((x @ w - y) ** 2))
        flare.send(
            FLModel(
                params={"numpy_key": w},
                metrics={"loss": loss},
                meta={"NUM_STEPS_CURRENT_ROUND": n},
            )
        )


if __name__ == "__main__":
    main()
