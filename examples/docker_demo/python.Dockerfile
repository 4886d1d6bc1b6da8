# A "python:bookworm" base image made from Debian's packages, for machines that
# cannot reach Docker Hub. Like the official image, `python` and `pip` are on PATH
# and `pip install` works: they live in a virtual environment, because Debian's
# own Python refuses pip installs into the system (PEP 668).
#
#   berth build -t python:bookworm -f examples/docker_demo/python.Dockerfile examples/docker_demo
FROM debian:stable

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /usr/local/python
ENV PATH=/usr/local/python/bin:$PATH \
    PYTHONUNBUFFERED=1

CMD ["python3"]
