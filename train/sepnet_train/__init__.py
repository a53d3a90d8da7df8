"""sepnet-train: the PyTorch side of sepnet.

Map: ``models/`` (one file per model family, plus the registry), ``quant`` (pattern
binarization and int8 quantizers), ``data`` (CIFAR-10 folder loading, the fixed validation
split, augmentation), ``train`` (training / fine-tuning script), ``export`` (model -> .sepnet,
manifest), ``reference`` (a PyTorch interpreter of .sepnet files), ``golden`` (golden bundles
for the Rust tests), ``onnx_export`` (R models -> ONNX).
"""

__version__ = "0.1.0"
