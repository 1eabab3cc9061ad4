# The image `relay api` and `relay worker` run from in docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY relay ./relay
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
RUN pip install --no-cache-dir . && mkdir -p /var/lib/relay && chown nobody /var/lib/relay
USER nobody
EXPOSE 8000
CMD ["relay", "api"]
