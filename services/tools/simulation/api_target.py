"""Where `shouwang simulate` writes by default: the visits API the environment names.

Its own module because the parser (`command.py`) names these in its help and the run
(`simulate_run.py`) reads them, and the run must not import the parser's module.
"""

API_URL_ENV = "SHOUWANG_VISITS_URL"
API_TOKEN_ENV = "SHOUWANG_VISITS_TOKEN"
DEFAULT_API_URL = "http://127.0.0.1:8081"
