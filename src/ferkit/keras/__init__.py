"""Keras models in ferkit, without TensorFlow: read ``.h5`` / ``.keras`` / ``.json`` + weights files
(:mod:`.reader`, :mod:`.topology`), convert them to ferkit's ONNX contract (:mod:`.convert`,
:mod:`.onnx_graph`), cached by content (:mod:`.cache`, which ``Recognizer(model="x.h5")`` uses); and write a
``seed`` checkpoint back out as the notebook's Keras ``.h5`` + ``.json`` (:mod:`.writer`).

May import numpy, h5py, onnx, ferkit.emotions and ferkit.data (the cache folder); only :mod:`.writer` imports
torch (and ferkit.checkpoint / ferkit.models), and nothing the runtime uses imports it. Never a door.
"""
