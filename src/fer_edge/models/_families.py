"""Imports every model family so its variants register. Add one line per new family file."""
import importlib

FAMILIES = ("mini_xception", "poster_v2", "ceprompt", "ua_fer", "dfer_clip")

for _name in FAMILIES:
    try:
        importlib.import_module(f"{__package__}.{_name}")
    except ModuleNotFoundError as exc:  # a family file not written yet, or its optional deps missing
        if exc.name and exc.name.endswith(_name):
            continue
        raise
