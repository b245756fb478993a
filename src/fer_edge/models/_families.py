"""Imports every model family so its variants register. Add one name per new family file.

A family whose optional packages are missing (the CLIP methods need open_clip/torchvision, from the
`train` or `export` extras) is skipped and remembered, so the other methods still work and asking for
one of its variants says what to install.
"""
import importlib

FAMILIES = ("mini_xception", "poster_v2", "ceprompt", "ua_fer", "dfer_clip")
OPTIONAL_PACKAGES = {"open_clip", "torchvision", "timm", "ftfy", "regex"}

# family -> the missing package that kept it from loading
UNAVAILABLE: dict[str, str] = {}

for _name in FAMILIES:
    try:
        importlib.import_module(f"{__package__}.{_name}")
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in OPTIONAL_PACKAGES:
            raise
        UNAVAILABLE[_name] = missing
