"""Bring your own model and data: a Keras or PyTorch model of yours becomes a source of
twins like the built-in families (`twinbench run --model path/model.py:NAME --data
file.npz`).

The model is read into a framework-free graph (graph.py: keras_reader.py for Sequential
and Functional Keras models, torch_reader.py with torch.fx for nn.Modules) and the other
framework's twin is written from it as readable source (torch_writer.py,
keras_writer.py). The converters are twinbench's own: nobuco (PyTorch -> Keras) targets
Keras 2 only. A layer no converter handles is refused in one line on the stacks that
need the twin; the native stacks still run the model itself. Every twin then goes
through the same parity checks as the built-in families before it is timed.
"""
