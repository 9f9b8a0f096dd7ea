"""edgeport: take a PyTorch model to TorchScript, ONNX, TF SavedModel and TFLite, and prove it still works."""

__version__ = "0.1.0"
