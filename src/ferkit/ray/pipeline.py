"""The Ray Data pipeline of ``ferkit predict --ray``: a dataset of image paths mapped by an actor pool of
:class:`~ferkit.ray.FerkitPredictor` (one model per actor, loaded once)."""

from __future__ import annotations

from .predictor import FerkitPredictor


def predict_dataset(ds, workers: int, threads: int = 1, batch_images: int | None = 32, **options):
    """``ds`` (columns ``path`` [+ ``bytes``, ``file``, ``image``]) -> a lazy Dataset of face rows
    (:mod:`ferkit.ray.rows`, plus ``image``, ``image_rows``, ``note``).

    ``workers`` actors of ``threads`` CPUs each; ``batch_images`` images per call (``None``: a whole block);
    ``options``: :class:`FerkitPredictor`'s (``model``, ``detector``, ``crop``, ``min_face``, ``threshold``,
    ``max_faces``, ``max_side``, ``batch_size``). An actor that dies is restarted and its tasks run again (Ray
    Data's fault tolerance for actors, without a limit: an image that killed its worker every time would be
    tried again and again); a task's result is delivered once, so no image is counted twice."""
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be >= 1 (got {workers} and {threads})")
    import ray.data

    return ds.map_batches(FerkitPredictor, fn_constructor_kwargs={"threads": threads, **options},
                          compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads,
                          batch_size=batch_images, batch_format="pyarrow")
