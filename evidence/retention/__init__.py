"""A case's life after the charging decision: retention, legal holds, four-eyes disposal."""
