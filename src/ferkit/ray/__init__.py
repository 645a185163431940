"""ferkit on a Ray cluster (``pip install 'ferkit[ray]'``): ``ferkit predict PATHS --ray [ADDRESS]``, and the same
pieces for Ray users' own pipelines. Importing this package imports neither Ray nor torch.

>>> import ray
>>> from ferkit.ray import FerkitPredictor
>>> ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)    # columns bytes, path
>>> faces = ds.map_batches(FerkitPredictor, fn_constructor_kwargs={"model": "default"},
...                        concurrency=8, num_cpus=1, batch_size=32)             # one model per actor
>>> faces.write_parquet("s3://bucket/faces/")     # one row per face; 'no face' and error rows (ferkit.ray.rows)

Modules: :mod:`~ferkit.ray.predictor` (the callable class), :mod:`~ferkit.ray.rows` (the table of results, shared
with ``predict --parquet``), :mod:`~ferkit.ray.inputs` (inputs listed as ``ferkit predict`` lists them, handed to
Ray Data as paths), :mod:`~ferkit.ray.pipeline` (the actor pool), :mod:`~ferkit.ray.cluster` (joining a cluster or
starting a local instance: 127.0.0.1, no dashboard, no usage statistics). Room: above the runtime (recognizer,
images, faces), below the doors (``commands/predict_ray.py``); never torch.
"""

from .cluster import LOCAL, Connection, RayUnavailable, connect, disconnect
from .inputs import block_size, list_inputs, paths_dataset
from .pipeline import predict_dataset
from .predictor import FerkitPredictor, output_schema
from .rows import COLUMNS, image_rows, schema

__all__ = ["COLUMNS", "LOCAL", "Connection", "FerkitPredictor", "RayUnavailable", "block_size", "connect",
           "disconnect", "image_rows", "list_inputs", "output_schema", "paths_dataset", "predict_dataset", "schema"]
