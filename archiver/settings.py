"""The one place configuration comes from: environment variables prefixed ``MAILVAULT_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILVAULT_", env_file=None, extra="ignore")

    es_url: str = "http://127.0.0.1:9200"
    es_index: str = Field("mailvault-messages", description="alias that searches and writes go to")
    es_request_timeout: float = 30.0

    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: str = "mailvault"
    s3_secret_key: str = "mailvault-secret"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_bucket: str = "mailvault-archive"

    redis_url: str = "redis://127.0.0.1:6379/0"

    # Chinese segmentation
    user_dict: Path | None = Field(
        None, description="jieba user dictionary (word [freq] [tag] lines)"
    )

    # limits
    max_message_bytes: int = 50 * 1024 * 1024
    max_body_chars: int = 2_000_000
    max_attachment_text_chars: int = 1_000_000
    import_batch_size: int = 500
    import_workers: int = Field(0, description="parse/segment processes; 0 means one per core")
    store_threads: int = 16

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    display_timezone: str = "Asia/Shanghai"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
