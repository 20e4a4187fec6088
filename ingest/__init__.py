"""Turn curated guides (and articles) into the knowledge-base SQLite file."""
