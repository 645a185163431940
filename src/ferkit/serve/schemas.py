"""JSON shapes of the API, for the OpenAPI document (and the page's and clients' expectations).

A face is whatever :meth:`ferkit.recognizer.Face.as_dict` returns; extra keys it gains later (e.g.
landmarks) pass through (``extra="allow"``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..emotions import EMOTIONS


class BoxOut(BaseModel):
    x: int
    y: int
    w: int
    h: int


class FaceOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    box: BoxOut = Field(description="x, y, width, height in pixels of the uploaded image (EXIF-rotated)")
    score: float = Field(description="detector score, in the detector's own units")
    landmarks: Any = Field(None, description="facial landmarks in image pixels where the detector gives them "
                                             "(absent otherwise); their form is Face.as_dict()'s")
    label: str = Field(description=f"most likely emotion, one of {', '.join(EMOTIONS)}")
    confidence: float = Field(description="probability of the label")
    probs: dict[str, float] = Field(description="the 7 probabilities, in the order " + ", ".join(EMOTIONS))


class ImageSize(BaseModel):
    width: int
    height: int


class Timing(BaseModel):
    decode: float
    inference: float


class EmotionsOut(BaseModel):
    faces: list[FaceOut]
    image: ImageSize
    model: str = Field(description="model that classified the faces ('default', 'fast' or a file name)")
    detector: str = Field(description="face detector of this request ('full' when crop=true); a face may name "
                                      "the path that found it (e.g. an image small enough to be a face crop)")
    timing_ms: Timing


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    filename: str
    status: int = Field(description="200 when the image was analysed, else the 4xx (or 500: "
                                    "model_output_not_finite) this image alone would get")
    faces: list[FaceOut] | None = None
    image: ImageSize | None = None
    model: str | None = None
    detector: str | None = None
    timing_ms: Timing | None = None
    error: str | None = None
    detail: str | None = None


class BatchOut(BaseModel):
    results: list[BatchItem]
    images: int
    failed: int


class ErrorOut(BaseModel):
    error: str = Field(description="short machine-readable code, e.g. not_an_image, too_many_pixels; "
                                   "model_output_not_finite (500) when the server's model gives NaN for a face")
    detail: str | list = Field(description="what was wrong, naming the file where there is one")


class Health(BaseModel):
    status: str
    pending: int = Field(description="analysis requests in this worker: body arriving, waiting or analysed")
    receiving: int = Field(description="of which the body is still arriving")
    capacity: int = Field(description="the most requests taken at once (concurrency + max_queue); more get 503")
    concurrency: int
    done: int = Field(description="jobs finished since the start")
    dropped: int = Field(description="jobs dropped because their client disconnected first")
    timed_out: int = Field(description="request bodies that did not arrive in time (408)")
    refused: int = Field(description="requests refused on arrival because the server was full (503)")
    uptime_s: float


class ModelOut(BaseModel):
    name: str
    file: str
    sha256: str
    bytes: int
    labels: list[str]
    members: list[str]
    tta: str | None
    temperature: float | None
    trained_labels: str = Field("fer2013", description="what the model learned: fer2013 (FER2013's own labels), "
                                                       "ferplus (FER+ crowd votes) or mix:W (both, W = the votes' "
                                                       "weight)")
    input: str
    detector: str = Field(description="default face detector of this server")
    detectors: dict[str, dict] = Field(description="every detector and whether it is installed")
    headline: dict | None = Field(description="the model card's headline numbers for this exact file "
                                              "(matched by sha256), or null")
    limits: dict
