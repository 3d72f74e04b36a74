# One image per service: docker build --build-arg SERVICE=ingest .
FROM python:3.11-slim
ARG SERVICE
ENV UV_PYTHON_DOWNLOADS=never PYTHONUNBUFFERED=1 SERVICE=${SERVICE}
RUN pip install --no-cache-dir uv && useradd --create-home app
WORKDIR /app
COPY . .
RUN uv sync --locked --no-dev --package ${SERVICE} && chown -R app /app
USER app
ENV PATH=/app/.venv/bin:$PATH
CMD ["sh", "-c", "exec python -m ${SERVICE}"]
