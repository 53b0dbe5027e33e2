"""state layer: the SQLite store (store.py), its schema (schema.py), records (records.py), object
locks (locks.py) and file locations (paths.py). Import the modules directly: this package file
stays empty so that `import vmkit.state.paths` does not pull in sqlite3.
"""
