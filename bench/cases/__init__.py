"""The measured cases; each covers one or more rows of bench.rows."""
