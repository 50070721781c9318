"""The conversion pipeline: discover -> cache/convert (workers) -> analyze -> config merge -> outputs.

Workers import modules of this folder (and util/, settings/) only, so a worker starts lean.
"""
