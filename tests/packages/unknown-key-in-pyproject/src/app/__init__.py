"""Never built: the settings are rejected first."""
