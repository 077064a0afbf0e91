"""Query languages over the store: DuckDB SQL, the Logs Insights language, filter patterns."""
