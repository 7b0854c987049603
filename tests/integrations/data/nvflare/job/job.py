"""Runs the NVFlare simulator on the fixture job (4 sites, 3 rounds) into the folder argv[1].

site-1 holds 10x the records of the others. Every site carries a PercentilePrivacy result filter
restricted to WEIGHT_DIFF results (so it does not act on this job's full-weight results), so the
importer's privacy-filter detection reads a real client config.
"""

import sys

from nvflare.app_common.filters.percentile_privacy import PercentilePrivacy
from nvflare.app_common.np.recipes.fedavg import NumpyFedAvgRecipe
from nvflare.recipe import SimEnv

recipe = NumpyFedAvgRecipe(
    name="fmfl-fixture",
    model=[0.0, 0.0, 0.0, 0.0],
    min_clients=4,
    num_rounds=3,
    train_script="client.py",
)
recipe.add_client_output_filter(
    PercentilePrivacy(percentile=10, gamma=0.01, data_kinds=["WEIGHT_DIFF"]),
    tasks=["train"],
)
recipe.execute(SimEnv(num_clients=4, num_threads=2, workspace_root=sys.argv[1]))
