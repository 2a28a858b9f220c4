"""Entry point for gunicorn: ``gunicorn api.wsgi:app``."""

from api import create_app
from api.settings import ApiSettings
from imgclf_contract import logs

settings = ApiSettings.from_env()
logs.configure(settings.log_level)
app = create_app(settings)
