"""A small web service for the classifier (the [serve] extra: FastAPI and uvicorn).

    POST /predict   multipart form, field "file" (one or more images); ?min_score=S
    GET  /health    {"status": "ok"}
    GET  /metadata  the model's version, hash, labels, input size, threshold and metrics

Requests over MAX_REQUEST_BYTES, files over MAX_FILE_BYTES or images over the pixel limit
get 413; unreadable images 400, naming the file; no file 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile

from .classifier import MAX_PIXELS, Classifier, InvalidImageError, load

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FILES = 32
MAX_REQUEST_BYTES = MAX_FILES * MAX_FILE_BYTES


def create_app(classifier: Classifier | None = None) -> FastAPI:
    """The service around a classifier (the shipped one by default)."""
    model = classifier or load()
    app = FastAPI(title="shapes_demo", version=str(model.info.version))

    @app.middleware("http")
    async def limit_size(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_REQUEST_BYTES:
            from fastapi.responses import JSONResponse

            return JSONResponse(
                {"detail": f"request over {MAX_REQUEST_BYTES} bytes"}, status_code=413
            )
        return await call_next(request)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return model.info.to_dict()

    @app.post("/predict")
    def predict(
        file: Annotated[list[UploadFile], File(description="one or more images")],
        min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    ) -> dict[str, Any]:
        if len(file) > MAX_FILES:
            raise HTTPException(413, f"at most {MAX_FILES} files per request, got {len(file)}")
        results = []
        for upload in file:
            data = upload.file.read(MAX_FILE_BYTES + 1)
            name = upload.filename or "file"
            if len(data) > MAX_FILE_BYTES:
                raise HTTPException(413, f"{name}: over {MAX_FILE_BYTES} bytes")
            try:
                prediction = model.predict(data, min_score=min_score)
            except InvalidImageError as exc:
                status = 413 if f"{MAX_PIXELS:,}-pixel" in str(exc) else 400
                raise HTTPException(
                    status, f"{name}: {str(exc).replace('bytes', name, 1)}"
                ) from None
            results.append(
                {
                    "file": name,
                    "label": prediction.answer,
                    "confident": prediction.confident,
                    "score": round(prediction.score, 6),
                    "scores": {k: round(v, 6) for k, v in prediction.scores.items()},
                }
            )
        return {"model_version": model.info.version, "predictions": results}

    return app
