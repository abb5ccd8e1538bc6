# genclf dashboard: docker build -t genclf . && docker run -p 8501:8501 genclf
# bookworm: the Debian release these machines run, which ships dataset-fashion-mnist
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# the default dataset: the real Fashion-MNIST files in /usr/share/datasets/fashion-mnist/
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# requirements first, so code changes reuse this layer; the CPU index keeps CUDA wheels out
COPY requirements.txt .
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY . .
RUN pip install --no-deps -e .

EXPOSE 8501
CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true"]
