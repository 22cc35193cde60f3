"""Storage below both transports: the database, jobs and their uploads, field rows, API-key tables,
retention and the Alembic migrations."""
