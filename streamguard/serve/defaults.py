"""Where the API listens and how it is reached, by default; kept apart so the CLI can name them cheaply."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081
METRICS_PATH = "/metrics"
HEALTH_PATH = "/health"
TOKEN_ENV = "STREAMGUARD_API_TOKEN"
DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
