"""epi-dash tests (a package, so `tests.*` is this folder even where a dependency ships a top-level `tests`)."""
