"""Entry point for gunicorn: ``gunicorn api.wsgi:app``."""

from api import create_app
from ml_worker.contract import logs
from ml_worker.contract.config import Settings

settings = Settings.from_env()
logs.configure(settings.log_level)
app = create_app(settings)
