# genclf dashboard: docker build -t genclf . && docker run -p 8501:8501 genclf
# GPU image (CUDA torch wheels; the CPU image stays the default):
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu130 -t genclf:gpu .
#   docker run --gpus all -p 8501:8501 genclf:gpu                       # the dashboard
#   docker run --gpus all -v /shared:/shared -e GENCLF_CACHE_DIR=/shared/cache -e GENCLF_RUNS_DIR=/shared/runs \
#     genclf:gpu accelerate launch --multi_gpu --num_processes 8 --mixed_precision bf16 -m genclf train ...
# bookworm: the Debian release these machines run, which ships dataset-fashion-mnist
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# the default dataset: the real Fashion-MNIST files in /usr/share/datasets/fashion-mnist/
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# requirements first, so code changes reuse this layer; the CPU index keeps CUDA wheels out,
# a CUDA index (e.g. .../whl/cu130) brings them in: the wheels carry the CUDA runtime, the host brings the driver
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY requirements.txt .
RUN pip install --extra-index-url "${TORCH_INDEX}" -r requirements.txt

COPY . .
RUN pip install --no-deps -e .

EXPOSE 8501
CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true"]
