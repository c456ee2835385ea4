// AIMData: see docs/ARCHITECTURE.md for what belongs in this layer.
