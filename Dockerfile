# One image for every docker-compose service: the mocks, the core and Locust (`lockstep serve ...`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lockstep ./lockstep
COPY mocks ./mocks
COPY core ./core
COPY scenarios ./scenarios
COPY contracts ./contracts
COPY loadtests ./loadtests
COPY bench ./bench
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
CMD ["lockstep", "up", "--host", "0.0.0.0"]
