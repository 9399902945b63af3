"""Makes a subclassed Keras twin saveable as `.keras`. Imported only by the Keras twins.

A twin's `__init__` takes a spec (a frozen dataclass), which Keras cannot serialise on its
own, so `Model.save` raises "must override get_config()". `saveable` records the spec's
fields (plain numbers and tuples) as the config and rebuilds the twin from them. Loading
still needs the class itself, registered when its module is imported: `safe_mode=True`
loads no code from the file.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

import keras


def saveable(spec_cls: type) -> Any:
    def wrap(cls: type) -> type:
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, spec, seed: int = 0, **kwargs: Any) -> None:
            init(self, spec, seed, **kwargs)
            # A JSON string: Keras would wrap a dict attribute in its tracking types.
            self._twin_config = json.dumps({"spec": dataclasses.asdict(spec), "seed": seed})

        def get_config(self) -> dict:
            return json.loads(self._twin_config)

        @classmethod
        def from_config(klass, config: dict) -> Any:
            fields = {k: tuple(v) if isinstance(v, list) else v
                      for k, v in config["spec"].items()}
            return klass(spec_cls(**fields), seed=config["seed"])

        cls.__init__, cls.get_config, cls.from_config = __init__, get_config, from_config
        return keras.saving.register_keras_serializable(package=cls.__module__)(cls)

    return wrap
