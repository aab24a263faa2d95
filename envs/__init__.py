"""NavGym's world: scenes, the embedded simulator, tasks, episode datasets and Gymnasium environments.

Importing :mod:`envs` registers the environment ids::

    NavGym/VLN-v0  NavGym/PointNav-v0  NavGym/ImageNav-v0  NavGym/Explore-v0
"""

import gymnasium

ENV_IDS = {
    "NavGym/VLN-v0": "vln",
    "NavGym/PointNav-v0": "pointnav",
    "NavGym/ImageNav-v0": "imagenav",
    "NavGym/Explore-v0": "explore",
}

for _env_id, _task in ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(_env_id, entry_point="envs.env:NavEnv", kwargs={"task": _task})
