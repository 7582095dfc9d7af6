"""PostgreSQL shared by the services: databases per duty, migrations."""
