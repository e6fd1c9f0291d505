"""The model zoo: real architectures written by others (torchvision, transformers), exported to ONNX with
random weights in a separate PyTorch environment, then compiled and timed by Cerebro vs ONNX Runtime (and
XLA where a Flax version of the architecture is installed). Entry point: `python -m benchmarks --zoo`."""
