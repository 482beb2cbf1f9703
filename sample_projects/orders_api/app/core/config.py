from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    database_url: str = "postgresql+asyncpg://orders@localhost:5432/orders"
    otlp_endpoint: str = "http://otel-collector:4317"
    service_name: str = "orders-api"


settings = Settings()
