# The image `relay api`, `relay worker` and `relay migrate` run from in docker-compose.yml.
# Without the `embedded` extra: no chdb (nor its pandas and pyarrow) and no `temporal` binary,
# which only `relay up` uses (about 1 GB less; see docs/deploying.md, Distributed mode).
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
