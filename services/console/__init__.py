"""The web console: review queue and household pages for reviewers and county operators."""
