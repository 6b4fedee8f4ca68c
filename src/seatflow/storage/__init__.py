"""PostgreSQL storage: schema, engine factory, migrations, units of work."""
