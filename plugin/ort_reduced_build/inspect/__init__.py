"""The inspection verbs, one module each: check, explain, diff, upgrade, modelcheck (the API's check_model).

They read what the engine writes (configs, models, pipeline results); only upgrade writes (the re-saved model).
"""
