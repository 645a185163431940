"""Keras models in ferkit, without TensorFlow: read ``.h5`` / ``.keras`` / ``.json`` + weights files
(:mod:`.reader`), convert them to ferkit's ONNX contract (:mod:`.convert`, :mod:`.onnx_graph`), cached by
content (:mod:`.cache`); and write a ``seed`` checkpoint back out as Keras ``.h5`` + ``.json``
(:mod:`.writer`, needs torch).
"""
