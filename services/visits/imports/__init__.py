"""CSV imports (household table, cadre registry) through the same checks as the API."""
