"""Browser tests: the console driven by Playwright in Debian's Chromium."""
