"""tus 1.0.0 resumable upload protocol: handler, store contract, stores and locks.

This package is a leaf: it imports nothing else from the project. The application
supplies the store, the registry that persists upload state, the locker and the hooks.
"""
