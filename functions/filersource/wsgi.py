"""WSGI entry point: the only module that builds the app at import."""
from functions.filersource.app import create_app

app = create_app()
