"""Model builders (pure Keras 3), the registry of named models, and bundled weights."""
