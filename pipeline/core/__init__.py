"""The core layer: types, settings, errors, assets and the algorithms every other layer
builds on (video decoding, boxes and crops, tracking, time). It imports nothing of prowl's
outside this folder; `tests/test_layers.py` holds every folder to its layer."""
