"""Reading leads: list and detail queries, lead-group counts, and the views the API and the
notifications show. Writes nothing."""
