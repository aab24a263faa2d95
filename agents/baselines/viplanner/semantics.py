"""ViPlanner's semantic classes and colours, the table from NavGym's scene categories to them, and the
reader of a released ``model.yaml``.

ViPlanner's semantic input is an RGB image in its class colours (``viplanner/config/viplanner_sem_meta.py``;
the published pipeline colours Mask2Former's COCO panoptic output with them). NavGym renders ground-truth
semantics instead: the main camera's ``category`` image holds each pixel's instance category as
:func:`envs.scenes.scene.category_code`, and :data:`CATEGORY_CLASSES` maps every category the scene
generators produce (arenas: box / cylinder / pole / table / furniture; houses: floor / wall / ceiling / window
/ picture / furniture) to a ViPlanner class. Pixels that hit nothing are ``background``; categories missing
from the table (imported scans) are ``static``, ViPlanner's class for everything unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from envs.scenes.scene import category_code

#: ViPlanner's classes and their published colours (RGB), in its order.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "sidewalk": (0, 255, 0),
    "crosswalk": (0, 102, 0),
    "floor": (0, 204, 0),
    "stairs": (0, 153, 0),
    "gravel": (204, 255, 0),
    "sand": (153, 204, 0),
    "snow": (204, 102, 0),
    "indoor_soft": (102, 153, 0),
    "terrain": (255, 255, 0),
    "road": (255, 128, 0),
    "person": (255, 0, 0),
    "anymal": (204, 0, 0),
    "vehicle": (153, 0, 0),
    "on_rails": (51, 0, 0),
    "motorcycle": (102, 0, 0),
    "bicycle": (102, 0, 0),
    "building": (127, 0, 255),
    "wall": (102, 0, 204),
    "fence": (76, 0, 153),
    "bridge": (51, 0, 102),
    "tunnel": (51, 0, 102),
    "pole": (0, 0, 255),
    "traffic_sign": (0, 0, 153),
    "traffic_light": (0, 0, 204),
    "bench": (0, 0, 102),
    "vegetation": (153, 0, 153),
    "water_surface": (204, 0, 204),
    "sky": (102, 0, 51),
    "background": (102, 0, 51),
    "dynamic": (32, 0, 32),
    "static": (0, 0, 0),
    "furniture": (0, 0, 51),
    "door": (153, 153, 0),
    "ceiling": (25, 0, 51),
}

_FURNITURE = (
    "armchair", "bathtub", "bed", "bookcase", "cabinet", "chair", "coat rack", "coffee table", "computer",
    "counter", "desk", "dryer", "floor lamp", "fridge", "lamp", "laundry basket", "nightstand", "shelf",
    "sink", "sofa", "stove", "table", "toilet", "tv", "tv stand", "wardrobe", "washing machine", "sideboard",
    "box", "cylinder",
)  # fmt: skip

#: NavGym scene category -> ViPlanner class. Arena boxes and cylinders are obstacles of furniture size; a
#: window and a picture are part of their wall; a plant is vegetation, a bench and a pole their own classes.
CATEGORY_CLASSES: dict[str, str] = {
    **{c: "furniture" for c in _FURNITURE},
    "floor": "floor",
    "wall": "wall",
    "ceiling": "ceiling",
    "door": "door",
    "window": "wall",
    "picture": "wall",
    "plant": "vegetation",
    "bench": "bench",
    "pole": "pole",
}
#: Classes of pixels that hit nothing and of unknown categories.
EMPTY_CLASS, UNKNOWN_CLASS = "background", "static"


def _lookup() -> tuple[Tensor, Tensor]:
    codes = {0: CLASS_COLORS[EMPTY_CLASS]}
    codes.update({category_code(c): CLASS_COLORS[k] for c, k in CATEGORY_CLASSES.items()})
    keys = sorted(codes)
    return torch.tensor(keys, dtype=torch.int64), torch.tensor([codes[k] for k in keys], dtype=torch.uint8)


_CODES, _COLORS = _lookup()


def semantic_colors(category: Tensor) -> Tensor:
    """(..., H, W) int category codes -> (..., H, W, 3) uint8 ViPlanner class colours (see the module
    docstring)."""
    codes, colors = _CODES.to(category.device), _COLORS.to(category.device)
    flat = category.long().reshape(-1)
    index = torch.searchsorted(codes, flat).clamp(max=len(codes) - 1)
    known = codes[index] == flat
    unknown = torch.tensor(CLASS_COLORS[UNKNOWN_CLASS], dtype=torch.uint8, device=category.device)
    out = torch.where(known[:, None], colors[index], unknown)
    return out.reshape(*category.shape, 3)


#: The ``!!python/object`` classes a released ``model.yaml`` may name (their fields are read as a mapping).
YAML_OBJECTS = ("viplanner.config.learning_cfg.DataCfg", "viplanner.config.learning_cfg.TrainCfg")
_PYTHON_TAG = "tag:yaml.org,2002:python/"


class ModelYamlLoader(yaml.SafeLoader):
    """YAML's safe loader plus ``!!python/tuple`` (a list) and the ``!!python/object`` classes of
    :data:`YAML_OBJECTS` (a dict of their fields); any other ``python/`` tag is refused by name. Nothing is
    imported or called."""


def _tuple(loader: yaml.SafeLoader, node: yaml.Node) -> list:
    return loader.construct_sequence(node, deep=True)


def _object(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if suffix not in YAML_OBJECTS:
        raise yaml.constructor.ConstructorError(
            None, None, f"refusing !!python/object:{suffix} (allowed: {list(YAML_OBJECTS)})", node.start_mark
        )
    return loader.construct_mapping(node, deep=True)


def _refuse(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"refusing the tag !!python/{suffix} (only python/tuple and {list(YAML_OBJECTS)})",
        node.start_mark,
    )  # fmt: skip


ModelYamlLoader.add_constructor(_PYTHON_TAG + "tuple", _tuple)
ModelYamlLoader.add_multi_constructor(_PYTHON_TAG + "object:", _object)
ModelYamlLoader.add_multi_constructor(_PYTHON_TAG, _refuse)


def read_model_yaml(path: str | Path) -> dict[str, Any]:
    """The ``config`` mapping of a released ViPlanner ``model.yaml`` (``{"config": ..., "loss": ...}``).

    Raises:
        ValueError: the file has a refused tag or no ``config`` mapping; the message names the file.
    """
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=ModelYamlLoader)  # noqa: S506 (restricted loader)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not a ViPlanner model.yaml: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise ValueError(f"{path}: expected a mapping with a 'config' mapping (ViPlanner's model.yaml)")
    return data["config"]


def check_released_config(config: dict[str, Any], expected: dict[str, Any], source: str) -> None:
    """Raise ``ValueError`` naming ``source`` and the fields where the released config differs from the
    agent's (``in_channel``, ``knodes``, ``img_input_size``, ``sem``, ``rgb``, ``decoder_small``)."""
    bad = {
        k: (config.get(k), v)
        for k, v in expected.items()
        if k in config and (list(config[k]) if isinstance(config[k], list | tuple) else config[k]) != v
    }
    if bad:
        detail = ", ".join(f"{k}: file {a!r}, agent {b!r}" for k, (a, b) in bad.items())
        raise ValueError(f"{source}: the released model does not fit this agent's config ({detail})")


def released_state(path: Path) -> dict[str, Tensor]:
    """The state dict of a released ``model.pt`` (``torch.save((state_dict, val_loss))``, no pickled
    objects), read with ``weights_only=True``."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, tuple | list) and obj and isinstance(obj[0], dict):
        obj = obj[0]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected ViPlanner's (state_dict, val_loss) or a state dict of tensors")
    return obj


__all__ = ["CATEGORY_CLASSES", "CLASS_COLORS", "read_model_yaml", "semantic_colors"]
